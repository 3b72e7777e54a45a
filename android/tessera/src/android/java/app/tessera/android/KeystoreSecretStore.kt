package app.tessera.android

import android.content.Context
import android.content.SharedPreferences
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import app.tessera.SecretStore
import app.tessera.SecretStoreException
import java.security.GeneralSecurityException
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The core's [SecretStore] over the Android Keystore: an AES-256-GCM key that never leaves the
 * Keystore (hardware-backed where the device has it) encrypts each value; the ciphertexts sit in a
 * private SharedPreferences file excluded from nothing the app did not choose (add it to the
 * backup rules' exclusions: a restored file without its key reads as signed out, by design).
 * Pass one to `Tessera.setSecretStore` right after `open` (docs/adr/0017).
 *
 * Uses the Android framework only (no AndroidX); compiled on the project's CI against the
 * framework jar from Maven Central, not run there.
 */
class KeystoreSecretStore(context: Context, name: String = "tessera.secrets") : SecretStore {
    private val prefs: SharedPreferences = context.getSharedPreferences(name, Context.MODE_PRIVATE)
    private val alias = "$name.key"

    override fun get(key: String): String? = guarded {
        val stored = prefs.getString(key, null) ?: return@guarded null
        val bytes = Base64.decode(stored, Base64.NO_WRAP)
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(TAG_BITS, bytes, 0, IV_BYTES))
        String(cipher.doFinal(bytes, IV_BYTES, bytes.size - IV_BYTES), Charsets.UTF_8)
    }

    override fun set(key: String, value: String) = guarded {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key())
        val sealed = cipher.iv + cipher.doFinal(value.toByteArray(Charsets.UTF_8))
        // commit, not apply: the core writes the database next and must not get ahead of this.
        if (!prefs.edit().putString(key, Base64.encodeToString(sealed, Base64.NO_WRAP)).commit()) {
            throw SecretStoreException.Unavailable("the secrets file could not be written")
        }
    }

    override fun delete(key: String) = guarded {
        if (!prefs.edit().remove(key).commit()) {
            throw SecretStoreException.Unavailable("the secrets file could not be written")
        }
    }

    private fun key(): SecretKey {
        val keyStore = KeyStore.getInstance(KEYSTORE).apply { load(null) }
        (keyStore.getKey(alias, null) as? SecretKey)?.let { return it }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, KEYSTORE)
        generator.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build(),
        )
        return generator.generateKey()
    }

    private inline fun <T> guarded(body: () -> T): T =
        try {
            body()
        } catch (e: GeneralSecurityException) {
            throw SecretStoreException.Unavailable(e.toString())
        } catch (e: IllegalArgumentException) {
            throw SecretStoreException.Unavailable(e.toString())
        }

    private companion object {
        const val KEYSTORE = "AndroidKeyStore"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val IV_BYTES = 12
        const val TAG_BITS = 128
    }
}
