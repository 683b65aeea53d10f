/*
 * sockdiag.node: which local user owns a TCP socket, asked of the kernel by its exact 4-tuple.
 *
 * The owner check (native-host/src/policy/client-identity.ts) needs the uid and inode of the
 * client's end of a loopback connection. /proc/net/tcp has them, but the kernel formats the
 * whole table on every read: with tens of thousands of sockets (TIME_WAIT after a connection
 * benchmark) that is megabytes per lookup. NETLINK_SOCK_DIAG answers one exact question
 * instead: an inet_diag_req_v2 with the full 4-tuple and without NLM_F_DUMP makes the kernel
 * look the socket up in its hash tables (inet_diag_find_one_icsk) and reply with one
 * inet_diag_msg, or an NLMSG_ERROR (ENOENT: no such socket). Node cannot open netlink
 * sockets, hence this addon.
 *
 *   lookup(family: 4 | 6, local: Buffer, localPort, remote: Buffer, remotePort)
 *     -> { uid, inode, state } | null
 *
 * `local` is the end of the socket we are asking about (the client's own address and port),
 * `remote` its peer (our end). Addresses are 4 or 16 bytes in network order. null when the
 * kernel has no such live socket; anything else that goes wrong throws an Error whose `code`
 * is the errno name and whose message names the step.
 *
 * Linux only. Synchronous: the kernel answers from its hash tables in microseconds; a receive
 * timeout bounds the wait should it ever not answer. One netlink socket per process, opened on
 * first use and kept; the host calls this from its main thread only.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

/* TCP states as the kernel numbers them (include/net/tcp_states.h). */
enum { STATE_TIME_WAIT = 6, STATE_LISTEN = 10, STATE_NEW_SYN_RECV = 12 };

/* The loopback device's ifindex, the same in every network namespace since Linux 3.9. */
enum { LOOPBACK_IFINDEX = 1 };

static int diag_fd = -1;
static uint32_t diag_seq;

static const char *errno_name(int err) {
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
  /* strerrorname_np is glibc 2.32+; older C libraries get the few names this file uses. */
  const char *name = strerrorname_np(err);
  if (name != NULL) return name;
#endif
  switch (err) {
    case ETIMEDOUT: return "ETIMEDOUT";
    case EPROTO: return "EPROTO";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return "EIO";
  }
}

/* Throws an Error with code = errno name and a message naming the step; returns NULL. */
static napi_value throw_errno(napi_env env, const char *step, int err, const char *detail) {
  char message[256];
  snprintf(message, sizeof message, "sock_diag %s: %s", step, detail != NULL ? detail : strerror(err));
  napi_value code, text, error, syscall;
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_create_string_utf8(env, step, NAPI_AUTO_LENGTH, &syscall);
  napi_set_named_property(env, error, "syscall", syscall);
  napi_throw(env, error);
  return NULL;
}

/*
 * A failed socket is closed so that the next lookup starts on a fresh one: whatever state it
 * was left in (a reply that came after the timeout, say) cannot reach the next request.
 */
static napi_value fail(napi_env env, const char *step, int err, const char *detail) {
  if (diag_fd >= 0) close(diag_fd);
  diag_fd = -1;
  return throw_errno(env, step, err, detail);
}

static int open_socket(void) {
  if (diag_fd >= 0) return 0;
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -1;
  /* The event loop waits on this call: never longer than a second. */
  struct timeval timeout = {.tv_sec = 1, .tv_usec = 0};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  diag_fd = fd;
  return 0;
}

/* An address as 16 bytes: IPv4 as ::ffff:a.b.c.d, so that either family compares with either. */
static void as_v6(int family, const void *addr, uint8_t out[16]) {
  if (family == AF_INET) {
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, addr, 4);
  } else {
    memcpy(out, addr, 16);
  }
}

/* 127.0.0.0/8 (also as ::ffff:127.x.y.z) or ::1. */
static int is_loopback(int family, const void *addr) {
  static const uint8_t mapped_prefix[12] = {[10] = 0xff, [11] = 0xff};
  static const uint8_t v6_loopback[16] = {[15] = 1};
  uint8_t v6[16];
  as_v6(family, addr, v6);
  if (memcmp(v6, mapped_prefix, sizeof mapped_prefix) == 0) return v6[12] == 127;
  return memcmp(v6, v6_loopback, sizeof v6_loopback) == 0;
}

/* Whether the kernel's answer is the socket asked about, not a neighbour it fell back to. */
static int same_socket(const struct inet_diag_req_v2 *asked, const struct inet_diag_msg *got) {
  uint8_t a[16], b[16];
  if (asked->id.idiag_sport != got->id.idiag_sport || asked->id.idiag_dport != got->id.idiag_dport) return 0;
  as_v6(asked->sdiag_family, asked->id.idiag_src, a);
  as_v6(got->idiag_family, got->id.idiag_src, b);
  if (memcmp(a, b, 16) != 0) return 0;
  as_v6(asked->sdiag_family, asked->id.idiag_dst, a);
  as_v6(got->idiag_family, got->id.idiag_dst, b);
  return memcmp(a, b, 16) == 0;
}

static napi_value null_value(napi_env env) {
  napi_value result;
  napi_get_null(env, &result);
  return result;
}

static napi_value answer(napi_env env, const struct inet_diag_req_v2 *asked,
                         const struct inet_diag_msg *got) {
  /*
   * The exact lookup falls back to a listening socket on the asked local port (it is the same
   * lookup an incoming packet gets): a listener is never a client. TIME_WAIT and SYN_RECV
   * mini-sockets, and sockets no process holds any more (inode 0, after close), carry no owner:
   * the live client socket is gone.
   */
  if (!same_socket(asked, got) || got->idiag_state == STATE_LISTEN || got->idiag_state == STATE_TIME_WAIT ||
      got->idiag_state == STATE_NEW_SYN_RECV || got->idiag_inode == 0)
    return null_value(env);
  napi_value result, uid, inode, state;
  napi_create_object(env, &result);
  napi_create_uint32(env, got->idiag_uid, &uid);
  napi_create_uint32(env, got->idiag_inode, &inode);
  napi_create_uint32(env, got->idiag_state, &state);
  napi_set_named_property(env, result, "uid", uid);
  napi_set_named_property(env, result, "inode", inode);
  napi_set_named_property(env, result, "state", state);
  return result;
}

/* A Buffer argument of exactly `length` bytes; NULL (with a TypeError thrown) otherwise. */
static const void *address_arg(napi_env env, napi_value value, size_t length, const char *name) {
  bool is_buffer = false;
  void *data = NULL;
  size_t size = 0;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, &data, &size) != napi_ok || size != length) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a Buffer of %zu bytes", name, length);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", message);
    return NULL;
  }
  return data;
}

static int port_arg(napi_env env, napi_value value, const char *name, uint16_t *port) {
  int64_t number = -1;
  if (napi_get_value_int64(env, value, &number) != napi_ok || number < 0 || number > 65535) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a port number (0-65535)", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", message);
    return -1;
  }
  *port = (uint16_t)number;
  return 0;
}

static napi_value lookup(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t family = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      napi_get_value_int32(env, argv[0], &family) != napi_ok || (family != 4 && family != 6)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                          "lookup(family: 4 | 6, local: Buffer, localPort, remote: Buffer, remotePort)");
    return NULL;
  }
  size_t length = family == 4 ? 4 : 16;
  uint16_t local_port, remote_port;
  const void *local = address_arg(env, argv[1], length, "local");
  if (local == NULL || port_arg(env, argv[2], "localPort", &local_port) != 0) return NULL;
  const void *remote = address_arg(env, argv[3], length, "remote");
  if (remote == NULL || port_arg(env, argv[4], "remotePort", &remote_port) != 0) return NULL;

  struct {
    struct nlmsghdr header;
    struct inet_diag_req_v2 body;
  } request;
  memset(&request, 0, sizeof request);
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  /* No NLM_F_DUMP: one exact socket, not a walk over the table. */
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.header.nlmsg_seq = ++diag_seq;
  request.body.sdiag_family = family == 4 ? AF_INET : AF_INET6;
  request.body.sdiag_protocol = IPPROTO_TCP;
  request.body.idiag_states = ~0U;
  /*
   * The kernel looks the socket up as an arriving packet would be: a packet from idiag_dst
   * to idiag_src. So idiag_src is the asked socket's own end, idiag_dst its peer.
   */
  request.body.id.idiag_sport = htons(local_port);
  request.body.id.idiag_dport = htons(remote_port);
  memcpy(request.body.id.idiag_src, local, length);
  memcpy(request.body.id.idiag_dst, remote, length);
  request.body.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  request.body.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  /*
   * The lookup takes the device the packet arrived on: a socket bound to a device
   * (SO_BINDTODEVICE, `curl --interface lo`) only matches when it is named, while unbound
   * sockets match any. Loopback traffic arrives on lo, so naming lo finds both kinds there.
   */
  request.body.id.idiag_if = is_loopback(request.body.sdiag_family, local) ? LOOPBACK_IFINDEX : 0;

  if (open_socket() != 0) return fail(env, "socket", errno, NULL);
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t sent;
  do sent = sendto(diag_fd, &request, sizeof request, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) return fail(env, "sendto", errno, NULL);

  /* One reply of well under 1 KiB is expected; the buffer leaves room to spare. */
  _Alignas(struct nlmsghdr) char buffer[8192];
  for (;;) {
    struct sockaddr_nl from;
    socklen_t from_length = sizeof from;
    ssize_t got;
    do got = recvfrom(diag_fd, buffer, sizeof buffer, MSG_TRUNC, (struct sockaddr *)&from, &from_length);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return fail(env, "recv", ETIMEDOUT, "no answer from the kernel within 1 s");
      return fail(env, "recv", errno, NULL);
    }
    /* Only the kernel (port 0) answers; anything else is not to be believed. */
    if (from.nl_pid != 0) continue;
    if ((size_t)got > sizeof buffer) return fail(env, "recv", EMSGSIZE, "reply larger than 8 KiB");
    size_t left = (size_t)got;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      /* A reply to an earlier request (one that timed out) is not this one's answer. */
      if (h->nlmsg_seq != request.header.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
          return fail(env, "recv", EPROTO, "truncated NLMSG_ERROR");
        int error = -((const struct nlmsgerr *)NLMSG_DATA(h))->error;
        if (error == ENOENT) return null_value(env);
        /* error 0 is an acknowledgement, which was not asked for and answers nothing. */
        if (error == 0) return fail(env, "request", EPROTO, "acknowledged without an answer");
        return fail(env, "request", error, NULL);
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
        char detail[64];
        snprintf(detail, sizeof detail, "unexpected message type %u", (unsigned)h->nlmsg_type);
        return fail(env, "recv", EPROTO, detail);
      }
      return answer(env, &request.body, (const struct inet_diag_msg *)NLMSG_DATA(h));
    }
  }
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "lookup", NAPI_AUTO_LENGTH, lookup, NULL, &fn);
  napi_set_named_property(env, exports, "lookup", fn);
  return exports;
}
