/**
 * The toolbar icon, drawn rather than shipped: a switch whose knob sits right when on and left
 * when off, green, grey or red like the badge. Drawing keeps the three looks in one place with
 * the badge colours and needs no image files in the build.
 */
import type { Action } from 'webextension-polyfill';
import { BADGE_COLORS, type BadgeLook } from './badge.ts';

const SIZES = [16, 32] as const;

function draw(size: number, look: BadgeLook, enabled: boolean): ImageData | undefined {
  const canvas = new OffscreenCanvas(size, size);
  const g = canvas.getContext('2d');
  if (!g) return undefined;
  const s = size / 16;
  const track = { x: 1 * s, y: 4 * s, w: 14 * s, h: 8 * s };
  const r = track.h / 2;
  g.fillStyle = BADGE_COLORS[look];
  g.beginPath();
  g.moveTo(track.x + r, track.y);
  g.arcTo(track.x + track.w, track.y, track.x + track.w, track.y + track.h, r);
  g.arcTo(track.x + track.w, track.y + track.h, track.x, track.y + track.h, r);
  g.arcTo(track.x, track.y + track.h, track.x, track.y, r);
  g.arcTo(track.x, track.y, track.x + track.w, track.y, r);
  g.closePath();
  g.fill();
  g.fillStyle = '#ffffff';
  g.beginPath();
  const knobX = enabled ? track.x + track.w - r : track.x + r;
  g.arc(knobX, track.y + r, r - 1.5 * s, 0, Math.PI * 2);
  g.fill();
  return g.getImageData(0, 0, size, size);
}

export type IconApi = Pick<Action.Static, 'setIcon'>;

export async function applyIcon(action: IconApi, look: BadgeLook, enabled: boolean): Promise<void> {
  // Firefox's event page has OffscreenCanvas too, but be quiet where it is missing: the badge
  // alone still says everything.
  if (typeof OffscreenCanvas === 'undefined') return;
  const imageData: Record<string, Action.ImageDataType> = {};
  for (const size of SIZES) {
    const data = draw(size, look, enabled);
    // The polyfill's type adds an index signature that a real ImageData does not declare.
    if (data) imageData[String(size)] = data as Action.ImageDataType;
  }
  await action.setIcon({ imageData });
}
