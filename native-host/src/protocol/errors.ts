/**
 * Typed errors of the wire codec. Every malformed input ends in exactly one of these, so a
 * caller can turn it into the protocol's own error reply; nothing else may escape a parser.
 */
export type ProtocolErrorCode =
  | 'BAD_VERSION'
  | 'BAD_COMMAND'
  | 'BAD_ADDRESS_TYPE'
  | 'BAD_ADDRESS'
  | 'BAD_LENGTH'
  | 'TOO_LONG'
  | 'BAD_METHOD'
  | 'BAD_STATUS'
  | 'BAD_HEADER';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
