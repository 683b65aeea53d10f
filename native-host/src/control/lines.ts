/**
 * The control socket's framing: one JSON message per line. JSON text never contains a raw
 * newline, so a line is exactly a message. A line longer than the limit is reported once and
 * skipped up to its newline, so one runaway sender cannot make the reader buffer without end.
 */
import { StringDecoder } from 'node:string_decoder';

export type LineResult = { readonly kind: 'line'; readonly text: string } | { readonly kind: 'too-long' };

export class LineSplitter {
  private readonly maxChars: number;
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private discarding = false;

  constructor(maxBytes: number) {
    // A UTF-8 byte is at most one UTF-16 unit: a byte limit is also a safe character limit.
    this.maxChars = maxBytes;
  }

  push(chunk: Buffer): LineResult[] {
    const out: LineResult[] = [];
    let text = this.decoder.write(chunk);
    for (;;) {
      const nl = text.indexOf('\n');
      if (nl === -1) {
        if (!this.discarding) {
          this.partial += text;
          if (this.partial.length > this.maxChars) {
            this.partial = '';
            this.discarding = true;
            out.push({ kind: 'too-long' });
          }
        }
        return out;
      }
      const line = this.partial + text.slice(0, nl);
      text = text.slice(nl + 1);
      this.partial = '';
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      if (line.length > this.maxChars) out.push({ kind: 'too-long' });
      else if (line.trim() !== '') out.push({ kind: 'line', text: line });
    }
  }
}
