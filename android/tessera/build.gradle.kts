// The Tessera Android library (AAR). Source sets, by what they need to build:
//   src/main/kotlin   generated bindings (committed, checked current by CI)
//   src/main/java     the pure-Kotlin layer (HTTP client, flows, geofence coordinator, push
//                     router, background sync policy, barcode layout): built and tested on the JVM
//                     by Maven on the project's CI (../pom.xml)
//   src/android/java  Android-framework code (Keystore secret store, card view, notifier):
//                     compiled on CI against the framework jar from Maven Central
//   src/play/java     Play services / Firebase / AndroidX (geofencing client, FCM service,
//                     WorkManager worker): built only here, with Google's Maven
//   src/test/java     Robolectric tests of the framework code (compiled on CI, run here)
// libtessera_ffi.so per ABI goes to src/main/jniLibs (../build-rust.sh, cargo-ndk).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
    `maven-publish`
}

android {
    namespace = "app.tessera"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets {
        getByName("main") {
            java.srcDirs("src/main/java", "src/main/kotlin", "src/android/java", "src/play/java")
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    testOptions { unitTests.isIncludeAndroidResources = true }
    publishing { singleVariant("release") { withSourcesJar() } }
}

// `./gradlew :tessera:publish` (add the team's repository under publishing.repositories): apps
// then depend on it in one line, implementation("app.tessera:tessera:0.1.0") (docs/android.md).
afterEvaluate {
    publishing {
        publications {
            create<MavenPublication>("release") {
                from(components["release"])
                groupId = "app.tessera"
                artifactId = "tessera"
                version = "0.1.0"
            }
        }
    }
}

dependencies {
    // UniFFI's Kotlin calls the library through JNA; the AAR carries JNA's own native parts.
    // Keep the version equal to ../pom.xml's jna.version (the one CI tests).
    implementation("net.java.dev.jna:jna:5.19.1@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.11.0")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-play-services:1.11.0")
    implementation("com.google.android.gms:play-services-location:21.3.0")
    implementation("com.google.firebase:firebase-messaging:24.1.0")
    implementation("androidx.work:work-runtime-ktx:2.10.0")

    testImplementation("junit:junit:4.13.2")
    testImplementation("org.robolectric:robolectric:4.16")
    testImplementation("com.google.zxing:core:3.5.3")
    // The JVM build of JNA for unit tests, loading target/debug's libtessera_ffi.so.
    testImplementation("net.java.dev.jna:jna:5.19.1")
}
