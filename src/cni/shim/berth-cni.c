/*
 * berth's CNI plugin, compiled (scripts/build-cni.sh → dist/bin/berth-cni; install it in the
 * runtime's CNI_PATH as "berth"). A thin shim that behaves as the Perl one in bin/berth-cni, byte
 * for byte: it forwards the runtime's CNI_* variables and the network config to the berth daemon
 * over its unix socket (POST /cni, HTTP/1.0) and prints the daemon's answer. It exists because a
 * call's cost is mostly the shim's own start-up, and a libc-only executable starts in a fraction of
 * Perl's time. bin/berth-cni stays the fallback for machines without a C compiler; the two must not
 * drift (test/integration/cni/shim-parity.test.ts runs both through the same cases).
 *
 * Where the Perl shim uses a regular expression, this spells out what it matches, quirks included:
 * the config is read as text (no JSON parser), so a key is the first "key": "value" in it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define DEFAULT_HOST "unix:///run/berth/berth.sock"
#define TIMEOUT_S 60
#define READ_CHUNK 65536

/* The CNI versions the daemon speaks, oldest first: the last is the newest. */
static const char *const versions[] = {"0.4.0", "1.0.0", "1.1.0"};
#define VERSIONS (sizeof versions / sizeof versions[0])

/* A growable byte string: configs, requests and answers have no size limit here. */
struct buf {
  char *p;
  size_t len, cap;
};

/* A view into other bytes (a key's value, the socket path), not NUL-terminated. */
struct span {
  const char *p;
  size_t len;
};

/* Async-signal-safe (the timeout handler uses it). Errors are dropped, as Perl's print drops them. */
static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void out_of_memory(void) {
  static const char msg[] = "berth-cni: out of memory\n";
  write_all(2, msg, sizeof msg - 1);
  _exit(1);
}

/* Room for at least `more` bytes past len. */
static void reserve(struct buf *b, size_t more) {
  if (more > SIZE_MAX - b->len) out_of_memory();
  size_t need = b->len + more;
  if (need <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->p, cap);
  if (!p) out_of_memory();
  b->p = p;
  b->cap = cap;
}

static void put(struct buf *b, const char *p, size_t n) {
  if (n == 0) return;
  reserve(b, n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void put_str(struct buf *b, const char *s) { put(b, s, strlen(s)); }
static void put_span(struct buf *b, struct span s) { put(b, s.p, s.len); }

/* Perl's \s on bytes: space, \t, \n, \v, \f, \r. */
static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* The first "key": "value" in the config text, as Perl's /"\Qkey\E"\s*:\s*"([^"]*)"/; empty if none. */
static struct span string_key(const struct buf *conf, const char *key) {
  size_t key_len = strlen(key);
  const char *end = conf->p + conf->len;
  for (const char *at = conf->p; at < end; at++) {
    at = memchr(at, '"', (size_t)(end - at));
    if (!at) break;
    const char *q = at + 1;
    if ((size_t)(end - q) <= key_len || memcmp(q, key, key_len) != 0 || q[key_len] != '"') continue;
    q += key_len + 1;
    while (q < end && is_space(*q)) q++;
    if (q == end || *q != ':') continue;
    q++;
    while (q < end && is_space(*q)) q++;
    if (q == end || *q != '"') continue;
    q++;
    const char *close = memchr(q, '"', (size_t)(end - q));
    if (close) return (struct span){q, (size_t)(close - q)};
  }
  return (struct span){"", 0};
}

/* The spec's error JSON, the message escaped as the Perl shim's cni_error does (\, " and newline). */
static struct buf error_json(int code, const struct buf *msg) {
  struct buf out = {0};
  char head[64];
  snprintf(head, sizeof head, "{\"cniVersion\":\"1.1.0\",\"code\":%d,\"msg\":\"", code);
  put_str(&out, head);
  for (size_t i = 0; i < msg->len; i++) {
    char c = msg->p[i];
    if (c == '\\') put_str(&out, "\\\\");
    else if (c == '"') put_str(&out, "\\\"");
    else if (c == '\n') put_str(&out, "\\n");
    else put(&out, &c, 1);
  }
  put_str(&out, "\"}\n");
  return out;
}

static void cni_error(int code, const struct buf *msg) {
  struct buf out = error_json(code, msg);
  write_all(1, out.p, out.len);
  exit(1);
}

static const char *command;
static struct span sock;

/* What the runtime is told when the daemon cannot be reached (STATUS has its own code). */
static struct buf unreachable_json(const char *why) {
  struct buf msg = {0};
  int status = strcmp(command, "STATUS") == 0;
  put_str(&msg, status ? "berth daemon not reachable at " : "cannot reach the berth daemon at ");
  put_span(&msg, sock);
  put_str(&msg, status ? ": " : " (");
  put_str(&msg, why);
  if (!status) put_str(&msg, "): start it with 'berth daemon', or set \"host\" in the plugin config");
  return error_json(status ? 50 : 11, &msg);
}

static void unreachable(const char *why) {
  alarm(0); /* so that the timeout's answer cannot follow this one */
  struct buf out = unreachable_json(why);
  write_all(1, out.p, out.len);
  exit(1);
}

/* `call: strerror(errno)`, as Perl's "call: $!". */
static void unreachable_errno(const char *call) {
  char why[256];
  snprintf(why, sizeof why, "%s: %s", call, strerror(errno));
  unreachable(why);
}

/* Made before the alarm is armed: the handler may only write it and leave. */
static struct buf timeout_answer;

static void on_alarm(int sig) {
  (void)sig;
  write_all(1, timeout_answer.p, timeout_answer.len);
  _exit(1);
}

/* Reads fd to its end into b; returns 0, or -1 with errno on an error other than EINTR. */
static int read_all(int fd, struct buf *b) {
  for (;;) {
    reserve(b, READ_CHUNK);
    ssize_t n = read(fd, b->p + b->len, b->cap - b->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) return 0;
    b->len += (size_t)n;
  }
}

/* The CNI_* variable, without CR or LF: a header value cannot span lines. */
static void put_header(struct buf *req, const char *name, const char *var) {
  const char *value = getenv(var);
  put_str(req, "CNI-");
  put_str(req, name);
  put_str(req, ": ");
  for (; value && *value; value++) {
    if (*value != '\r' && *value != '\n') put(req, value, 1);
  }
  put_str(req, "\r\n");
}

/* Whether asked is exactly one of the supported versions. */
static int supported(struct span asked) {
  for (size_t i = 0; i < VERSIONS; i++) {
    if (strlen(versions[i]) == asked.len && memcmp(versions[i], asked.p, asked.len) == 0) return 1;
  }
  return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int main(void) {
  command = getenv("CNI_COMMAND");
  if (!command) command = "";

  struct buf conf = {0};
  read_all(0, &conf); /* an unreadable stdin is an empty config, as Perl's <STDIN> // '' */

  if (strcmp(command, "VERSION") == 0) {
    /* Answered here, without the daemon, in the version the runtime asked in (newest if none or unknown). */
    struct span asked = string_key(&conf, "cniVersion");
    if (asked.len == 0 || !supported(asked)) asked = (struct span){versions[VERSIONS - 1], strlen(versions[VERSIONS - 1])};
    struct buf out = {0};
    put_str(&out, "{\"cniVersion\":\"");
    put_span(&out, asked);
    put_str(&out, "\",\"supportedVersions\":[");
    for (size_t i = 0; i < VERSIONS; i++) {
      put_str(&out, i ? ",\"" : "\"");
      put_str(&out, versions[i]);
      put_str(&out, "\"");
    }
    put_str(&out, "]}\n");
    write_all(1, out.p, out.len);
    return 0;
  }

  struct span host = string_key(&conf, "host");
  if (host.len == 0) {
    /* Perl's `$ENV{BERTH_HOST} || default`: unset, empty and "0" all mean the default. */
    const char *env = getenv("BERTH_HOST");
    if (!env || !*env || strcmp(env, "0") == 0) env = DEFAULT_HOST;
    host = (struct span){env, strlen(env)};
  }
  /* m{^unix://(.+)$}: no newline in the path, except one at the very end, which is not part of it. */
  static const char scheme[] = "unix://";
  size_t scheme_len = sizeof scheme - 1;
  int ok = host.len > scheme_len && memcmp(host.p, scheme, scheme_len) == 0;
  if (ok) {
    sock = (struct span){host.p + scheme_len, host.len - scheme_len};
    if (sock.p[sock.len - 1] == '\n') sock.len--;
    ok = sock.len > 0 && !memchr(sock.p, '\n', sock.len);
  }
  if (!ok) {
    struct buf msg = {0};
    put_str(&msg, "unsupported berth host \"");
    put_span(&msg, host);
    put_str(&msg, "\": use unix:///path/to/berth.sock");
    cni_error(7, &msg);
  }

  /* A daemon that goes away mid-request is an error answer, not a silent death by SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  timeout_answer = unreachable_json("no answer within 60 s");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  alarm(TIMEOUT_S);

  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) unreachable_errno("socket");
  /* The address as the Perl shim packs it ('S a*'): the family, then the path's bytes, unterminated;
   * the kernel judges the length (beyond struct sockaddr_un's: EINVAL, as it says for a huge one). */
  if (sock.len > 4096) {
    errno = EINVAL;
    unreachable_errno("connect");
  }
  struct buf addr = {0};
  sa_family_t family = AF_UNIX;
  put(&addr, (const char *)&family, sizeof family);
  put_span(&addr, sock);
  /* A unix-socket connect interrupted by a signal leaves the socket unconnected: try again. */
  while (connect(fd, (const struct sockaddr *)(const void *)addr.p, (socklen_t)addr.len) < 0) {
    if (errno != EINTR) unreachable_errno("connect");
  }

  struct buf req = {0};
  put_str(&req, "POST /cni HTTP/1.0\r\nHost: berth\r\nContent-Type: application/json\r\n");
  put_header(&req, "Command", "CNI_COMMAND");
  put_header(&req, "ContainerID", "CNI_CONTAINERID");
  put_header(&req, "Netns", "CNI_NETNS");
  put_header(&req, "Ifname", "CNI_IFNAME");
  put_header(&req, "Args", "CNI_ARGS");
  char length[64];
  snprintf(length, sizeof length, "Content-Length: %zu\r\nConnection: close\r\n\r\n", conf.len);
  put_str(&req, length);
  put(&req, conf.p, conf.len);
  for (size_t sent = 0; sent < req.len;) {
    ssize_t n = write(fd, req.p + sent, req.len - sent);
    if (n < 0) {
      if (errno == EINTR) continue;
      unreachable_errno("write");
    }
    sent += (size_t)n;
  }

  /* HTTP/1.0: the daemon sends no chunked encoding and closes the connection after the body. */
  struct buf res = {0};
  if (read_all(fd, &res) < 0) unreachable_errno("read");
  alarm(0);

  /* The head ends at the first blank line; the status is m{^HTTP/\d\.\d (\d{3})} of it. */
  static const char blank[] = "\r\n\r\n";
  size_t head_len = res.len, body_at = res.len;
  for (size_t i = 0; i + 4 <= res.len; i++) {
    if (memcmp(res.p + i, blank, 4) == 0) {
      head_len = i;
      body_at = i + 4;
      break;
    }
  }
  const char *h = res.p;
  if (head_len < 12 || memcmp(h, "HTTP/", 5) != 0 || !is_digit(h[5]) || h[6] != '.' || !is_digit(h[7]) || h[8] != ' ' || !is_digit(h[9]) || !is_digit(h[10]) || !is_digit(h[11])) {
    unreachable("no HTTP answer");
  }
  char status[4] = {res.p[9], res.p[10], res.p[11], '\0'};

  /* The body with its trailing newlines collapsed to one (none if it is empty). */
  size_t body_end = res.len;
  while (body_end > body_at && res.p[body_end - 1] == '\n') body_end--;
  if (body_end > body_at) {
    res.len = body_end;
    put(&res, "\n", 1);
    write_all(1, res.p + body_at, res.len - body_at);
  }
  if (status[0] == '2') return 0;
  if (body_end == body_at) {
    struct buf msg = {0};
    put_str(&msg, "berth daemon answered HTTP ");
    put_str(&msg, status);
    cni_error(5, &msg);
  }
  return 1;
}
