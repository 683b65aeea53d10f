/**
 * What each control request does to the service. Requests arrive here already validated; a
 * failure becomes an error reply with the protocol's code (INVALID_CONFIG with the field paths,
 * NOT_FOUND, ...), and the service's own pushes (config changes, status) become events.
 */
import {
  EVENT_KINDS,
  type ErrorResponse,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  REQUEST_TYPES,
  type Response,
  errorResponse,
  okResponse,
  utf8Length,
} from '../../../shared/messages/protocol.ts';
import type { IncomingRequest } from '../../../shared/messages/schema.ts';
import type { Logger } from '../log/logger.ts';
import { ServiceError, type Service } from '../service/service.ts';
import { type ControlConnection, ControlServer } from './server.ts';

/** Status events to log subscribers come at most this often, and only while tunnels change. */
const STATUS_EVENT_MS = 1000;
/** `check` walks real connections; each hop has its own timeouts, this bounds the whole. */
const CHECK_DEADLINE_MS = 120_000;

/** Room in a message for the response envelope around config.get's answer. */
const CONFIG_GET_BUDGET = MAX_MESSAGE_BYTES - 1024;

const CAPABILITIES = [...REQUEST_TYPES, ...EVENT_KINDS.map((kind) => `event:${kind}`)];

function failure(id: number, error: unknown): ErrorResponse {
  if (error instanceof ServiceError) {
    return errorResponse(id, {
      code: error.code,
      message: error.message,
      ...(error.issues ? { issues: [...error.issues] } : {}),
    });
  }
  return errorResponse(id, {
    code: 'FAILED',
    message: error instanceof Error ? error.message : String(error),
  });
}

async function dispatch(
  service: Service,
  server: ControlServer,
  request: IncomingRequest,
  connection: ControlConnection,
): Promise<Response> {
  const { id } = request;
  switch (request.type) {
    case 'hello': {
      connection.client = request.client;
      const store = await service.credentialStore();
      return okResponse(id, request.type, {
        protocol: PROTOCOL_VERSION,
        hostVersion: service.version,
        capabilities: CAPABILITIES,
        credentialStore: { kind: store.kind, description: store.description },
        platform: process.platform,
      });
    }
    case 'config.get': {
      const result = await service.configResult();
      // Said here, with what to do, rather than by the generic size check when sending.
      const bytes = utf8Length(JSON.stringify(result));
      if (bytes > CONFIG_GET_BUDGET) {
        return errorResponse(id, {
          code: 'TOO_LARGE',
          message: `the config is ${bytes} bytes as JSON, over what one message may carry; read it with config.part`,
        });
      }
      return okResponse(id, request.type, result);
    }
    case 'config.part':
      return okResponse(id, request.type, await service.configPart(request.offset, request.revision));
    case 'config.replace':
      return okResponse(id, request.type, await service.replaceConfig(request.config));
    case 'config.patch':
      return okResponse(id, request.type, await service.patchConfig(request.patch));
    case 'credential.set':
      await service.setCredential(request.upstreamId, request.password);
      return okResponse(id, request.type, { upstreamId: request.upstreamId, saved: true });
    case 'credential.delete': {
      const deleted = await service.deleteCredential(request.upstreamId);
      return okResponse(id, request.type, { upstreamId: request.upstreamId, deleted });
    }
    case 'toggle.set':
      return okResponse(id, request.type, { enabled: await service.setEnabled(request.enabled) });
    case 'route':
      return okResponse(id, request.type, service.route(request.target));
    case 'check':
      return okResponse(
        id,
        request.type,
        await service.check(request.name, request.target, AbortSignal.timeout(CHECK_DEADLINE_MS)),
      );
    case 'status':
      return okResponse(id, request.type, service.status(server.connectionCount));
    case 'log.page': {
      const options: { before?: number; limit?: number } = {};
      if (request.before !== undefined) options.before = request.before;
      if (request.limit !== undefined) options.limit = request.limit;
      return okResponse(id, request.type, service.log.page(options));
    }
    case 'log.subscribe':
      connection.subscribe();
      return okResponse(id, request.type, { latestSeq: service.log.latestSeq });
    case 'log.unsubscribe':
      connection.unsubscribe();
      return okResponse(id, request.type, {});
    case 'service.reload':
      return okResponse(id, request.type, { revision: await service.reload() });
    case 'service.stop':
      // After this reply is on its way: the owner closes the endpoint, ending every connection.
      setImmediate(() =>
        service.requestStop(`stop requested by a control client (${connection.client ?? 'unknown'})`),
      );
      return okResponse(id, request.type, { pid: process.pid, stopping: true });
  }
}

export interface ControlOptions {
  readonly endpoint: string;
  readonly logger: Logger;
}

/** The control endpoint for `service`, wired to its events; not listening yet. */
export function createControlServer(service: Service, options: ControlOptions): ControlServer {
  let statusTimer: NodeJS.Timeout | undefined;
  const server: ControlServer = new ControlServer({
    endpoint: options.endpoint,
    logger: options.logger,
    logSource: service.log,
    handler: async (request, connection) => {
      try {
        return await dispatch(service, server, request, connection);
      } catch (error) {
        return failure(request.id, error);
      }
    },
  });
  service.onConfigChange((change) =>
    server.broadcast({ v: PROTOCOL_VERSION, event: 'config', data: change }),
  );
  service.log.subscribe(() => {
    statusTimer ??= setTimeout(() => {
      statusTimer = undefined;
      server.broadcast(
        { v: PROTOCOL_VERSION, event: 'status', data: service.status(server.connectionCount) },
        (c) => c.subscribed,
      );
    }, STATUS_EVENT_MS);
    statusTimer.unref();
  });
  return server;
}
