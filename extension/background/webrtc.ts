/**
 * Optional WebRTC leak protection: privacy.network.webRTCIPHandlingPolicy set to
 * 'disable_non_proxied_udp', so WebRTC uses the proxy or nothing and cannot reveal the local or
 * public address around it. 'privacy' is an optional permission: browsers grant one only from a
 * user gesture, which a page has and the worker does not, so the page asks for it
 * (permissions.request in its click handler) and the worker only checks that it was granted.
 */
export const WEBRTC_PERMISSION = 'privacy';
export const PROTECTED_POLICY = 'disable_non_proxied_udp';

export interface PermissionsApi {
  contains(permissions: { permissions: string[] }): Promise<boolean>;
}

export interface PolicySetting {
  set(details: { value: unknown }): Promise<void>;
  clear(details: Record<string, never>): Promise<void>;
}

/** privacy.network.webRTCIPHandlingPolicy, which only exists once the permission is granted. */
export type PolicyLookup = () => PolicySetting | undefined;

export type WebrtcOutcome = 'protected' | 'cleared' | 'no-permission' | 'unsupported';

export async function hasWebrtcPermission(permissions: PermissionsApi): Promise<boolean> {
  try {
    return await permissions.contains({ permissions: [WEBRTC_PERMISSION] });
  } catch {
    return false;
  }
}

export async function applyWebrtc(
  enabled: boolean,
  permissions: PermissionsApi,
  policy: PolicyLookup,
): Promise<WebrtcOutcome> {
  const granted = await hasWebrtcPermission(permissions);
  if (!granted) return enabled ? 'no-permission' : 'cleared';
  const setting = policy();
  if (setting === undefined) return 'unsupported';
  if (enabled) {
    await setting.set({ value: PROTECTED_POLICY });
    return 'protected';
  }
  // Clearing hands the policy back to the browser (and to any other extension).
  await setting.clear({});
  return 'cleared';
}
