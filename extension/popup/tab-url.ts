/**
 * The URL the popup describes. Normally the active tab's; but when the popup is opened as a page
 * of its own (end-to-end tests, debugging), the active tab is the popup itself, so
 * `index.html?url=<encoded URL>` names the page to describe instead.
 */
export function activeTabUrl(
  search: string,
  queryActiveTab: () => Promise<string | undefined>,
): Promise<string | undefined> {
  const override = new URLSearchParams(search).get('url');
  if (override) return Promise.resolve(override);
  return queryActiveTab().catch(() => undefined);
}
