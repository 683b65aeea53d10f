/*
 * Load generator and target server for `npm run bench` (compiled at run time with cc -O2).
 * Written in C so that the client and the target never are the bottleneck of what they
 * measure: every mode is a tight loop over non-blocking sockets and preallocated buffers.
 * Everything is on 127.0.0.1, and every mode stops by itself (bounded counts, deadlines, and
 * alarm() as the last resort).
 *
 *   loadgen serve MAX_S
 *       Target server. Prints "port N". The first byte of each connection picks its mode:
 *       'U' sink everything, 'D' send without end, 'E' echo everything (that byte too).
 *       Exits when stdin closes, on SIGTERM, or after MAX_S seconds.
 *   loadgen bulk TARGET PROXY up|down CONNS WARM_MS MEASURE_MS
 *   loadgen rate TARGET PROXY CONCURRENCY WARM_MS MEASURE_MS MAX_CONNS
 *   loadgen ping TARGET PROXY SIZE WARM_COUNT MAX_COUNT MAX_MS
 *   loadgen hold TARGET PROXY CONNS CONCURRENCY MAX_HOLD_MS
 *       PROXY 0 means straight to the target; otherwise a SOCKS5 no-auth CONNECT to
 *       127.0.0.1:TARGET through 127.0.0.1:PROXY. Each prints one JSON line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BULK_BUF (128 * 1024)
#define MAX_EVENTS 256
#define MAX_FDS 65536

static char bulk_buf[BULK_BUF];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  printf("{\"error\":\"%s: %s\"}\n", what, strerror(errno));
  fflush(stdout);
  exit(1);
}

/* 2,000 tunnels need more descriptors than the usual soft limit of 1,024. */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t want = rl.rlim_max < MAX_FDS ? rl.rlim_max : MAX_FDS;
  if (rl.rlim_cur < want) {
    rl.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* The SOCKS5 CONNECT request for 127.0.0.1:port (RFC 1928, ATYP 1). */
static void connect_request(unsigned char req[10], int port) {
  req[0] = 5;
  req[1] = 1;
  req[2] = 0;
  req[3] = 1;
  req[4] = 127;
  req[5] = 0;
  req[6] = 0;
  req[7] = 1;
  req[8] = (unsigned char)(port >> 8);
  req[9] = (unsigned char)(port & 0xff);
}

/* Length of a complete SOCKS5 reply once its first 5 bytes are known; 0 if unknown type. */
static size_t reply_length(const unsigned char *r) {
  switch (r[3]) {
  case 1: return 4 + 4 + 2;
  case 4: return 4 + 16 + 2;
  case 3: return 4 + 1 + r[4] + 2;
  default: return 0;
  }
}

/* A blocking tunnel (with a 10 s receive timeout so that a stuck proxy cannot hang us). */
static int open_tunnel(int target, int proxy) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  set_nodelay(fd);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = loopback(proxy ? proxy : target);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) goto fail;
  if (proxy) {
    unsigned char greet[3] = {5, 1, 0}, choice[2], req[10], rep[262];
    if (write_all(fd, greet, 3) || read_all(fd, choice, 2)) goto fail;
    if (choice[0] != 5 || choice[1] != 0) {
      errno = EPROTO;
      goto fail;
    }
    connect_request(req, target);
    if (write_all(fd, req, 10) || read_all(fd, rep, 5)) goto fail;
    size_t len = reply_length(rep);
    if (rep[1] != 0 || len == 0) {
      errno = ECONNREFUSED;
      goto fail;
    }
    if (read_all(fd, rep + 5, len - 5)) goto fail;
  }
  return fd;
fail: {
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}
}

/* ---- serve ------------------------------------------------------------------------------ */

struct sconn {
  char mode; /* 0 until the first byte arrived */
  char *pend; /* echo bytes the peer has not taken yet */
  size_t pend_len;
};

static struct sconn *sconns;

static void sclose(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(sconns[fd].pend);
  memset(&sconns[fd], 0, sizeof sconns[fd]);
}

static void smod(int ep, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Echoes what it can; keeps the rest and stops reading until the peer takes it. */
static int secho(int ep, int fd, const char *data, size_t len) {
  ssize_t n = write(fd, data, len);
  if (n < 0 && errno != EAGAIN) return -1;
  if (n < 0) n = 0;
  if ((size_t)n < len) {
    struct sconn *c = &sconns[fd];
    c->pend = malloc(len - (size_t)n);
    if (!c->pend) return -1;
    memcpy(c->pend, data + n, len - (size_t)n);
    c->pend_len = len - (size_t)n;
    smod(ep, fd, EPOLLOUT);
  }
  return 0;
}

static int serve(int max_s) {
  alarm((unsigned)max_s);
  sconns = calloc(MAX_FDS, sizeof *sconns);
  if (!sconns) die("calloc");
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = loopback(0);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096)) die("listen");
  socklen_t alen = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &alen);
  set_nonblock(lfd);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = 0;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
  printf("port %d\n", ntohs(a.sin_port));
  fflush(stdout);

  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      uint32_t e = events[i].events;
      if (fd == 0) {
        char b[64];
        if (read(0, b, sizeof b) <= 0) return 0; /* the bench went away: so do we */
        continue;
      }
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          if (c >= MAX_FDS) {
            close(c);
            continue;
          }
          set_nodelay(c);
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      struct sconn *c = &sconns[fd];
      if (e & EPOLLOUT) {
        if (c->mode == 'D') {
          for (int k = 0; k < 16; k++) {
            ssize_t w = write(fd, bulk_buf, BULK_BUF);
            if (w < 0 && errno == EAGAIN) break;
            if (w <= 0) {
              sclose(ep, fd);
              goto next;
            }
          }
        } else if (c->pend_len > 0) {
          ssize_t w = write(fd, c->pend, c->pend_len);
          if (w < 0 && errno != EAGAIN) {
            sclose(ep, fd);
            goto next;
          }
          if (w > 0) {
            memmove(c->pend, c->pend + w, c->pend_len - (size_t)w);
            c->pend_len -= (size_t)w;
          }
          if (c->pend_len == 0) {
            free(c->pend);
            c->pend = NULL;
            smod(ep, fd, EPOLLIN);
          }
        }
      }
      if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (int k = 0; k < 16; k++) {
          ssize_t r = read(fd, bulk_buf, BULK_BUF);
          if (r < 0 && errno == EAGAIN) break;
          if (r <= 0) {
            sclose(ep, fd);
            goto next;
          }
          if (c->mode == 0) {
            c->mode = bulk_buf[0];
            if (c->mode == 'D') {
              smod(ep, fd, EPOLLIN | EPOLLOUT);
              break;
            }
          }
          if (c->mode == 'E') {
            if (secho(ep, fd, bulk_buf, (size_t)r)) {
              sclose(ep, fd);
              goto next;
            }
            if (c->pend_len > 0) break;
          }
          if ((size_t)r < BULK_BUF) break;
        }
      }
    next:;
    }
  }
}

/* ---- bulk ------------------------------------------------------------------------------- */

static int bulk(int target, int proxy, int up, int conns, int warm_ms, int measure_ms) {
  int *fds = calloc((size_t)conns, sizeof *fds);
  int ep = epoll_create1(0);
  for (int i = 0; i < conns; i++) {
    fds[i] = open_tunnel(target, proxy);
    if (fds[i] < 0) die("tunnel");
    char mode = up ? 'U' : 'D';
    if (write_all(fds[i], &mode, 1)) die("write");
    set_nonblock(fds[i]);
    struct epoll_event ev = {.events = up ? EPOLLOUT : EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
  }
  long long total = 0, at_warm = 0;
  int live = conns, errors = 0;
  double t0 = now_s(), warm_end = t0 + warm_ms / 1e3, end = warm_end + measure_ms / 1e3, t_warm = 0;
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    double t = now_s();
    if (t_warm == 0 && t >= warm_end) {
      t_warm = t;
      at_warm = total;
    }
    if (t >= end || live == 0) break;
    int n = epoll_wait(ep, events, MAX_EVENTS, 10);
    for (int i = 0; i < n; i++) {
      int fd = fds[events[i].data.u32];
      /* A few calls per wake-up, then the clock again: the window edges stay sharp. */
      for (int k = 0; k < 8; k++) {
        ssize_t r = up ? write(fd, bulk_buf, BULK_BUF) : read(fd, bulk_buf, BULK_BUF);
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) {
          errors++;
          live--;
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
          break;
        }
        total += r;
      }
    }
  }
  double t_end = now_s();
  for (int i = 0; i < conns; i++) close(fds[i]);
  double secs = t_warm > 0 ? t_end - t_warm : 0;
  long long bytes = total - at_warm;
  printf("{\"mode\":\"bulk\",\"dir\":\"%s\",\"conns\":%d,\"bytes\":%lld,\"seconds\":%.6f,"
         "\"bytesPerSec\":%.0f,\"totalBytes\":%lld,\"errors\":%d}\n",
         up ? "up" : "down", conns, bytes, secs, secs > 0 ? bytes / secs : 0.0, total, errors);
  return 0;
}

/* ---- rate ------------------------------------------------------------------------------- */

enum { S_CONNECTING, S_CHOICE, S_REPLY, S_ECHO };

struct slot {
  int fd;
  int state;
  size_t got;
  unsigned char buf[262];
};

static int rate_target, rate_proxy;

static int slot_start(int ep, struct slot *s, uint32_t index) {
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (s->fd < 0) return -1;
  set_nodelay(s->fd);
  s->state = S_CONNECTING;
  s->got = 0;
  struct sockaddr_in a = loopback(rate_proxy ? rate_proxy : rate_target);
  if (connect(s->fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
    close(s->fd);
    s->fd = -1;
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = index};
  epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
  return 0;
}

/* Advances one connection; returns 1 when its echo came back, -1 on failure, 0 otherwise. */
static int slot_step(int ep, struct slot *s, uint32_t index) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = index};
  if (s->state == S_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return -1;
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    if (rate_proxy) {
      unsigned char greet[3] = {5, 1, 0};
      if (write(s->fd, greet, 3) != 3) return -1;
      s->state = S_CHOICE;
    } else {
      if (write(s->fd, "E", 1) != 1) return -1;
      s->state = S_ECHO;
    }
    return 0;
  }
  ssize_t r = read(s->fd, s->buf + s->got, sizeof s->buf - s->got);
  if (r < 0 && errno == EAGAIN) return 0;
  if (r <= 0) return -1;
  s->got += (size_t)r;
  switch (s->state) {
  case S_CHOICE:
    if (s->got < 2) return 0;
    if (s->buf[0] != 5 || s->buf[1] != 0) return -1;
    connect_request(s->buf, rate_target);
    if (write(s->fd, s->buf, 10) != 10) return -1;
    s->state = S_REPLY;
    s->got = 0;
    return 0;
  case S_REPLY: {
    if (s->got < 5) return 0;
    size_t need = reply_length(s->buf);
    if (s->buf[1] != 0 || need == 0) return -1;
    if (s->got < need) return 0;
    if (write(s->fd, "E", 1) != 1) return -1;
    s->state = S_ECHO;
    s->got = 0;
    return 0;
  }
  case S_ECHO:
    return s->got >= 1 ? 1 : 0;
  }
  return -1;
}

static int rate(int target, int proxy, int conc, int warm_ms, int measure_ms, long max_conns) {
  rate_target = target;
  rate_proxy = proxy;
  struct slot *slots = calloc((size_t)conc, sizeof *slots);
  int ep = epoll_create1(0);
  long done = 0, at_warm = 0, errors = 0, started = 0;
  double t0 = now_s(), warm_end = t0 + warm_ms / 1e3, end = warm_end + measure_ms / 1e3, t_warm = 0;
  int active = 0;
  for (int i = 0; i < conc; i++) {
    slots[i].fd = -1;
    if (slot_start(ep, &slots[i], (uint32_t)i) == 0) {
      active++;
      started++;
    } else {
      errors++;
    }
  }
  struct epoll_event events[MAX_EVENTS];
  while (active > 0) {
    double t = now_s();
    if (t_warm == 0 && t >= warm_end) {
      t_warm = t;
      at_warm = done;
    }
    /* Whatever is still in flight at the end is not waited for. */
    if (t >= end || done >= max_conns || errors > 10000) break;
    int n = epoll_wait(ep, events, MAX_EVENTS, 10);
    for (int i = 0; i < n; i++) {
      uint32_t idx = events[i].data.u32;
      struct slot *s = &slots[idx];
      int r = slot_step(ep, s, idx);
      if (r == 0) continue;
      if (r > 0) done++;
      else errors++;
      close(s->fd); /* closing also takes it out of the epoll set */
      s->fd = -1;
      active--;
      if (slot_start(ep, s, idx) == 0) {
        active++;
        started++;
      } else {
        errors++;
      }
    }
  }
  double t_end = now_s();
  for (int i = 0; i < conc; i++)
    if (slots[i].fd >= 0) close(slots[i].fd);
  double secs = t_warm > 0 ? t_end - t_warm : 0;
  long measured = done - at_warm;
  printf("{\"mode\":\"rate\",\"concurrency\":%d,\"connections\":%ld,\"seconds\":%.6f,"
         "\"perSec\":%.1f,\"total\":%ld,\"errors\":%ld}\n",
         conc, measured, secs, secs > 0 ? measured / secs : 0.0, done, errors);
  return 0;
}

/* ---- ping ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int ping(int target, int proxy, int size, int warm, int max_count, int max_ms) {
  int fd = open_tunnel(target, proxy);
  if (fd < 0) die("tunnel");
  char *msg = malloc((size_t)size), *back = malloc((size_t)size);
  memset(msg, 'x', (size_t)size);
  msg[0] = 'E';
  double *rtt = malloc(sizeof(double) * (size_t)max_count);
  for (int i = 0; i < warm; i++)
    if (write_all(fd, msg, (size_t)size) || read_all(fd, back, (size_t)size)) die("ping");
  double end = now_s() + max_ms / 1e3;
  int n = 0;
  while (n < max_count) {
    double t = now_s();
    if (t >= end) break;
    if (write_all(fd, msg, (size_t)size) || read_all(fd, back, (size_t)size)) die("ping");
    rtt[n++] = now_s() - t;
  }
  close(fd);
  qsort(rtt, (size_t)n, sizeof *rtt, cmp_double);
  double sum = 0;
  for (int i = 0; i < n; i++) sum += rtt[i];
  printf("{\"mode\":\"ping\",\"size\":%d,\"count\":%d,\"p50Us\":%.2f,\"p99Us\":%.2f,\"meanUs\":%.2f}\n",
         size, n, n ? rtt[n / 2] * 1e6 : 0.0, n ? rtt[(int)(n * 0.99)] * 1e6 : 0.0, n ? sum / n * 1e6 : 0.0);
  return 0;
}

/* ---- hold ------------------------------------------------------------------------------- */

/*
 * Opens CONNS tunnels, CONCURRENCY handshakes at a time (as a browser opens them, and so that
 * a server's per-connection latency does not make this take minutes), proves each with a
 * one-byte echo, then holds them all until stdin says so or MAX_HOLD_MS passes.
 */
static int hold(int target, int proxy, int conns, int conc, int max_hold_ms) {
  rate_target = target;
  rate_proxy = proxy;
  if (conc > conns) conc = conns;
  int *fds = calloc((size_t)conns, sizeof *fds);
  struct slot *slots = calloc((size_t)conc, sizeof *slots);
  int ep = epoll_create1(0);
  double t0 = now_s(), deadline = t0 + 60.0;
  int held = 0, started = 0, active = 0;
  const char *error = NULL;
  for (int i = 0; i < conc; i++) {
    if (slot_start(ep, &slots[i], (uint32_t)i) != 0) {
      error = strerror(errno);
      break;
    }
    active++;
    started++;
  }
  struct epoll_event events[MAX_EVENTS];
  while (active > 0 && !error && now_s() < deadline) {
    int n = epoll_wait(ep, events, MAX_EVENTS, 100);
    for (int i = 0; i < n && !error; i++) {
      uint32_t idx = events[i].data.u32;
      struct slot *s = &slots[idx];
      errno = 0;
      int r = slot_step(ep, s, idx);
      if (r == 0) continue;
      active--;
      if (r < 0) {
        error = errno ? strerror(errno) : "the proxy refused or closed a tunnel";
        close(s->fd);
        s->fd = -1;
        break;
      }
      /* Held from here on: out of the handshake's epoll set, kept open. */
      epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
      fds[held++] = s->fd;
      s->fd = -1;
      if (started < conns) {
        if (slot_start(ep, s, idx) != 0) {
          error = strerror(errno);
          break;
        }
        active++;
        started++;
      }
    }
  }
  if (!error && held < conns) error = "timed out opening tunnels";
  for (int i = 0; i < conc; i++)
    if (slots[i].fd >= 0) close(slots[i].fd);
  if (error)
    printf("{\"mode\":\"hold\",\"held\":%d,\"ms\":%.1f,\"error\":\"%s\"}\n", held, (now_s() - t0) * 1e3, error);
  else
    printf("{\"mode\":\"hold\",\"held\":%d,\"ms\":%.1f}\n", held, (now_s() - t0) * 1e3);
  fflush(stdout);
  /* Held until the bench has measured (it writes a line or closes stdin), or the deadline. */
  struct pollfd p = {.fd = 0, .events = POLLIN};
  poll(&p, 1, max_hold_ms);
  for (int i = 0; i < held; i++) close(fds[i]);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  memset(bulk_buf, 0x5a, sizeof bulk_buf);
  if (argc < 2) {
    fprintf(stderr, "usage: see the comment at the top of loadgen.c\n");
    return 2;
  }
  const char *mode = argv[1];
  int a[7] = {0};
  for (int i = 2; i < argc && i < 9; i++) a[i - 2] = atoi(argv[i]);
  /* The last resort bound: no mode may outlive its own deadline by much. */
  if (strcmp(mode, "serve") == 0 && argc == 3) return serve(a[0]);
  if (strcmp(mode, "bulk") == 0 && argc == 8) {
    alarm((unsigned)((a[4] + a[5]) / 1000 + 30));
    return bulk(a[0], a[1], strcmp(argv[4], "up") == 0, a[3], a[4], a[5]);
  }
  if (strcmp(mode, "rate") == 0 && argc == 8) {
    alarm((unsigned)((a[3] + a[4]) / 1000 + 30));
    return rate(a[0], a[1], a[2], a[3], a[4], atol(argv[7]));
  }
  if (strcmp(mode, "ping") == 0 && argc == 8) {
    alarm((unsigned)(a[5] / 1000 + 60));
    return ping(a[0], a[1], a[2], a[3], a[4], a[5]);
  }
  if (strcmp(mode, "hold") == 0 && argc == 7) {
    alarm((unsigned)(a[4] / 1000 + 120));
    return hold(a[0], a[1], a[2], a[3], a[4]);
  }
  fprintf(stderr, "bad arguments; see the comment at the top of loadgen.c\n");
  return 2;
}
