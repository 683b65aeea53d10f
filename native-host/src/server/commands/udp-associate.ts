import { Rep } from '../../protocol/socks5.ts';
import { type CommandContext, closeAfterReply } from '../session.ts';

// Being written now (UDP ASSOCIATE relay); until then the command is refused with REP 07.
export async function runUdpAssociate(ctx: CommandContext): Promise<void> {
  ctx.replier.failed(Rep.COMMAND_NOT_SUPPORTED);
  closeAfterReply(ctx.socket);
}
