// The Tessera Android library: generated Kotlin bindings (src/main/kotlin, committed and checked
// current by CI) + libtessera_ffi.so per ABI (src/main/jniLibs, built by ../build-rust.sh).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "app.tessera"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    // UniFFI's Kotlin calls the library through JNA; the AAR carries JNA's own native parts.
    implementation("net.java.dev.jna:jna:5.13.0@aar")
}
