//! The card at a cold start without JNA: one JNI function, `CardFastPath.cardBytes(path)`, that
//! reads the card screen through one read-only connection and hands it over in UniFFI's own serialisation, so
//! the Kotlin bindings read it with their generated `FfiConverterTypeCardView`. A JVM (or an
//! Android app process) shows the card before JNA has loaded and registered the bindings' few
//! hundred functions (docs/figures.md: ~100 ms before the first `card()` through JNA).
//!
//! It answers `null` for anything but a card (no card yet, a damaged file, a panic): the caller
//! then takes the ordinary path, which reports the typed error.

use std::ptr::null_mut;

use jni_sys::{JNIEnv, jbyte, jbyteArray, jclass, jsize, jstring};

/// `app.tessera.CardFastPath.cardBytes(path: String): ByteArray?`
#[unsafe(no_mangle)]
pub extern "system" fn Java_app_tessera_CardFastPath_cardBytes(
    env: *mut JNIEnv,
    _class: jclass,
    path: jstring,
) -> jbyteArray {
    // SAFETY: the JVM calls this with its own `env` for this thread and a live `path` reference.
    #[allow(unsafe_code)]
    let answer = std::panic::catch_unwind(|| unsafe { card_bytes(env, path) });
    answer.unwrap_or(null_mut())
}

/// # Safety
/// `env` is the calling thread's JNI environment; `path` a local reference to a `String`.
#[allow(unsafe_code)]
unsafe fn card_bytes(env: *mut JNIEnv, path: jstring) -> jbyteArray {
    // SAFETY (every call below): functions of the JVM's own table for this thread's `env`.
    let jni = unsafe { &**env };
    let (Some(len), Some(region), Some(new_array), Some(set_region)) = (
        jni.GetStringLength,
        jni.GetStringRegion,
        jni.NewByteArray,
        jni.SetByteArrayRegion,
    ) else {
        return null_mut();
    };
    // UTF-16 from the JVM, as Java holds it (not its "modified UTF-8").
    let n = unsafe { len(env, path) };
    let mut utf16 = vec![0u16; usize::try_from(n).unwrap_or(0)];
    unsafe { region(env, path, 0, n, utf16.as_mut_ptr()) };
    let Ok(path) = String::from_utf16(&utf16) else {
        return null_mut();
    };
    let Some(bytes) = card(&path) else {
        return null_mut();
    };
    let Ok(size) = jsize::try_from(bytes.len()) else {
        return null_mut();
    };
    let array = unsafe { new_array(env, size) };
    if !array.is_null() {
        unsafe { set_region(env, array, 0, size, bytes.as_ptr().cast::<jbyte>()) };
    }
    array
}

/// The card screen of the database at `path`, as UniFFI serialises a `CardView`: read through
/// one read-only connection (`tessera_core::card::peek`), nothing written.
fn card(path: &str) -> Option<Vec<u8>> {
    let view = tessera_core::card::peek(std::path::Path::new(path))?;
    let mut buf = Vec::new();
    <tessera_core::CardView as uniffi::Lower<tessera_core::UniFfiTag>>::write(view, &mut buf);
    Some(buf)
}
