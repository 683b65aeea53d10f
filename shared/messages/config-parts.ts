/**
 * Reading a config too large for one message (config.get answers TOO_LARGE) through
 * config.part: the parts of its answer's JSON text, all of one revision. Free of Node and DOM
 * APIs, for the extension and the CLI alike.
 */
import type { ConfigPartResult, ConfigResult } from './protocol.ts';

export type ReadConfigPart = (offset: number, revision: number | undefined) => Promise<ConfigPartResult>;

export class ConfigPartsError extends Error {
  override readonly name = 'ConfigPartsError';
}

/**
 * Reads every part and parses the whole. `changed(error)` says whether a part was refused because
 * the config changed meanwhile (the host's CHANGED): then it starts over, up to `attempts` times.
 */
export async function readConfigInParts(
  readPart: ReadConfigPart,
  changed: (error: unknown) => boolean,
  attempts = 3,
): Promise<ConfigResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readOnce(readPart);
    } catch (error) {
      if (!changed(error) || attempt >= attempts) throw error;
    }
  }
}

async function readOnce(readPart: ReadConfigPart): Promise<ConfigResult> {
  const first = await readPart(0, undefined);
  const parts = [first.text];
  let offset = first.text.length;
  while (offset < first.total) {
    const part = await readPart(offset, first.revision);
    if (part.revision !== first.revision || part.offset !== offset || part.total !== first.total) {
      throw new ConfigPartsError(
        `config.part answered offset ${part.offset} of ${part.total} (revision ${part.revision}) when asked for ${offset} of ${first.total} (revision ${first.revision})`,
      );
    }
    // An empty part before the end would never finish.
    if (part.text.length === 0)
      throw new ConfigPartsError(`config.part returned nothing at offset ${offset}`);
    parts.push(part.text);
    offset += part.text.length;
  }
  return JSON.parse(parts.join('')) as ConfigResult;
}
