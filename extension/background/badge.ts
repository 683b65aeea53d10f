/**
 * The toolbar button says one of three things and nothing in between: on, off, or a problem.
 * Text, colour and tooltip each say it on their own (the colour alone would fail colour-blind
 * users, the text alone is too short to say which problem), so `badgeFor` keeps them together.
 */
import type { Badge, Problem } from '../shared/ui-protocol.ts';

export const BADGE_COLORS = {
  on: '#188038',
  off: '#5f6368',
  problem: '#d93025',
} as const;

export type BadgeLook = keyof typeof BADGE_COLORS;

export interface BadgeInput {
  readonly enabled: boolean;
  readonly problems: readonly Problem[];
  /** host:port of the local proxy, for the tooltip. */
  readonly endpoint?: string;
}

export function badgeLook(input: BadgeInput): BadgeLook {
  if (input.problems.length > 0) return 'problem';
  return input.enabled ? 'on' : 'off';
}

export function badgeFor(input: BadgeInput): Badge {
  const look = badgeLook(input);
  const stateText = input.enabled ? 'Switchyard is on' : 'Switchyard is off';
  if (look === 'problem') {
    const [first, ...rest] = input.problems;
    const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
    return {
      text: '!',
      color: BADGE_COLORS.problem,
      title: `${stateText}, but there is a problem: ${first!.message}${more}`,
    };
  }
  if (look === 'on') {
    const via = input.endpoint ? ` through the local proxy at ${input.endpoint}` : '';
    return {
      text: 'ON',
      color: BADGE_COLORS.on,
      title: `${stateText}: sites go by your rules${via}.`,
    };
  }
  return {
    text: 'OFF',
    color: BADGE_COLORS.off,
    title: `${stateText}: the browser's own proxy settings apply.`,
  };
}

/** The part of chrome.action (browser.action) the badge needs; passed in so tests need no browser. */
export interface ActionApi {
  setBadgeText(details: { text: string }): Promise<void>;
  setBadgeBackgroundColor(details: { color: string }): Promise<void>;
  setTitle(details: { title: string }): Promise<void>;
}

export async function applyBadge(action: ActionApi, badge: Badge): Promise<void> {
  await Promise.all([
    action.setBadgeText({ text: badge.text }),
    action.setBadgeBackgroundColor({ color: badge.color }),
    action.setTitle({ title: badge.title }),
  ]);
}
