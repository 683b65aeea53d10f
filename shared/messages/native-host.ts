/**
 * The native-messaging host's registered name: the installer writes `<name>.json` manifests
 * under it and the extension connects to it. Lowercase letters, digits, dots and underscores
 * only (Chrome's rule).
 */
export const NATIVE_HOST_NAME = 'dev.switchyard.host';

/** Firefox identifies the extension by this id (manifest browser_specific_settings.gecko.id). */
export const GECKO_EXTENSION_ID = 'switchyard@switchyard.dev';

// The id Chromium gives the unpacked extension, fixed by the "key" in /manifest.json so that
// native-host manifests (allowed_origins) and e2e tests can name it before the browser starts.
// Derived from the public key alone: sha256 of the base64-decoded "key" (DER
// SubjectPublicKeyInfo), first 32 hex digits, each mapped 0-f -> a-p:
//   node -p "[...require('crypto').createHash('sha256').update(Buffer.from(require('./manifest.json').key, 'base64')).digest('hex').slice(0, 32)].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('')"
// The RSA private key was discarded: it is only needed to pack a .crx. Changing "key" changes this id.
export const DEV_EXTENSION_ID = 'ffpnoflpfbgbmecefachbdgoiigpfemc';
