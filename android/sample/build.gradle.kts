// The sample app: every capability on one screen each, with framework views only (no AndroidX),
// so that the project's CI compiles it against the framework jar (android/maven/sample).
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "app.tessera.sample"
    compileSdk = 35
    defaultConfig {
        applicationId = "app.tessera.sample"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    implementation(project(":tessera"))
}
