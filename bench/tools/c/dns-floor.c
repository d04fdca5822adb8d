/*
 * The floor under §5's DNS throughput: a UDP server that answers every query with one A record
 * and nothing else (no lookup, no cache, no tally), one thread, batches of 64 through recvmmsg
 * and sendmmsg, as berth's resolver thread reads and writes. Driven by the same dnsperf over the
 * same path, its queries per second are what this machine gives any resolver beside the client.
 * Usage: dns-floor ADDRESS PORT SECONDS (it exits by itself). Prints {"listening":PORT} once bound.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 1500

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: dns-floor ADDRESS PORT SECONDS\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
  if (fd < 0 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("dns-floor: bind");
    return 1;
  }
  struct timeval tick = {.tv_sec = 1};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
  printf("{\"listening\":%s}\n", argv[2]);
  fflush(stdout);
  static char bufs[BATCH][SLOT];
  static struct sockaddr_in peers[BATCH];
  static struct iovec iov[BATCH];
  static struct mmsghdr msgs[BATCH];
  /* One A record for the question's name (a pointer to offset 12), TTL 600, 10.0.0.1. */
  static const unsigned char answer[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 2, 0x58, 0, 4, 10, 0, 0, 1};
  time_t end = time(NULL) + atoi(argv[3]);
  while (time(NULL) < end) {
    for (int i = 0; i < BATCH; i++) {
      iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = SLOT - sizeof answer};
      msgs[i].msg_hdr = (struct msghdr){.msg_name = &peers[i], .msg_namelen = sizeof peers[i], .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (n <= 0) continue;
    int out = 0;
    for (int i = 0; i < n; i++) {
      unsigned char *q = (unsigned char *)bufs[i];
      size_t len = msgs[i].msg_len;
      if (len < 17 || (q[2] & 0x80)) continue; /* too short for a question, or not a query */
      /* The question ends after its name (labels up to a zero byte) and type and class; anything after (EDNS) is dropped. */
      size_t at = 12;
      while (at < len && q[at] != 0) at += (size_t)q[at] + 1;
      if (at + 5 > len) continue;
      len = at + 5;
      q[2] = (unsigned char)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
      q[3] = 0x80;                                  /* RA, NOERROR */
      q[6] = 0, q[7] = 1, q[8] = q[9] = q[10] = q[11] = 0;
      memcpy(q + len, answer, sizeof answer);
      iov[i].iov_len = len + sizeof answer;
      msgs[out] = msgs[i];
      out++;
    }
    if (out > 0) sendmmsg(fd, msgs, (unsigned)out, 0);
  }
  return 0;
}
