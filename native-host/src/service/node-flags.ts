/**
 * V8 options the SOCKS service is started with (by the `switchyard` executable's first line,
 * by the native-messaging bridge and by `npm start`). They cannot be set from inside a running
 * process, and Node refuses the first one in NODE_OPTIONS, so every way of starting the service
 * passes them on the command line. The list lives in native-host/node-flags.json because the
 * build writes it into the executable's `#!` line too.
 *
 * --initial-old-space-size=64: with V8's small starting old generation, relaying at a
 *   gigabyte per second (every socket read is a fresh 64 KiB buffer) keeps hitting its
 *   allocation limit, and the collections roughly double the CPU per GiB relayed (1.1-1.5 s
 *   against 0.6-0.8 s in interleaved runs; docs/performance.md). Memory is reserved as needed,
 *   not up front: idle RSS does not change.
 * --max-semi-space-size=2: the young generation otherwise grows to 16 MiB per semi-space in a
 *   burst of handshakes and stays there, which is most of what 2,000 held tunnels appear to cost
 *   (30 KB each against 21 KB); with the larger old generation above it does not cost
 *   throughput.
 */
import flags from '../../node-flags.json' with { type: 'json' };

export const SERVICE_NODE_FLAGS: readonly string[] = flags;

/** V8 spells options with '-' or '_' alike: `--max_semi_space_size` is the same option. */
function optionName(arg: string): string {
  return (arg.split('=')[0] ?? arg).replaceAll('_', '-');
}

/** `execArgv` plus the service's flags, leaving alone any of them the user already chose. */
export function withServiceFlags(execArgv: readonly string[]): string[] {
  const chosen = new Set(execArgv.map(optionName));
  return [...execArgv, ...SERVICE_NODE_FLAGS.filter((flag) => !chosen.has(optionName(flag)))];
}
