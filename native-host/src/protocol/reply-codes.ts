/**
 * One place that turns failures into the client's reply code: Node socket errors, codec
 * errors, and the SOCKS5 REP codes an upstream sent back.
 */
import type { ProtocolError } from './errors.ts';
import { Rep, type RepCode } from './socks5.ts';

const ERRNO_TO_REP: Record<string, RepCode> = {
  ECONNREFUSED: Rep.CONNECTION_REFUSED,
  ENETUNREACH: Rep.NETWORK_UNREACHABLE,
  ENETDOWN: Rep.NETWORK_UNREACHABLE,
  EHOSTUNREACH: Rep.HOST_UNREACHABLE,
  EHOSTDOWN: Rep.HOST_UNREACHABLE,
  ENOTFOUND: Rep.HOST_UNREACHABLE,
  EAI_AGAIN: Rep.HOST_UNREACHABLE,
  EAI_NONAME: Rep.HOST_UNREACHABLE,
  EAI_FAIL: Rep.HOST_UNREACHABLE,
  ENODATA: Rep.HOST_UNREACHABLE,
  ETIMEDOUT: Rep.TTL_EXPIRED,
  EAFNOSUPPORT: Rep.ADDRESS_TYPE_NOT_SUPPORTED,
};

export function repForErrno(code: string | undefined): RepCode {
  // hasOwn: 'constructor' or '__proto__' must not find Object.prototype's members.
  return code !== undefined && Object.hasOwn(ERRNO_TO_REP, code) ? ERRNO_TO_REP[code]! : Rep.GENERAL_FAILURE;
}

export function repForProtocolError(error: ProtocolError): RepCode {
  switch (error.code) {
    case 'BAD_COMMAND':
      return Rep.COMMAND_NOT_SUPPORTED;
    case 'BAD_ADDRESS_TYPE':
      return Rep.ADDRESS_TYPE_NOT_SUPPORTED;
    default:
      return Rep.GENERAL_FAILURE;
  }
}
