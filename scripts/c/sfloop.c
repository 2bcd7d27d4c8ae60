// Minimal keep-alive HTTP/1.1 file server: the upper bound of what any server can do with a
// file body on loopback. One epoll thread per worker (SO_REUSEPORT), every request answered
// with the same file: head by send(MSG_MORE), body by sendfile until EAGAIN, resume on EPOLLOUT.
// No parsing beyond finding the end of the head. Usage: sfloop PORT FILE WORKERS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int port, filefd;
static off_t filesize;
static char head[256];
static int headlen;

struct conn {
  int fd;
  off_t off;   // -1: idle; else body offset being sent
  int hsent;   // bytes of head sent
  char buf[4096];
  int len;
};

static int has_request(struct conn *c) {
  void *p = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (!p) return 0;
  int used = (char *)p - c->buf + 4;
  memmove(c->buf, c->buf + used, c->len - used);
  c->len -= used;
  return 1;
}

// Returns 0 to keep, -1 to close. Sends as far as the socket takes.
static int pump(struct conn *c) {
  for (;;) {
    if (c->off < 0) {
      if (!has_request(c)) return 0;
      c->off = 0;
      c->hsent = 0;
    }
    while (c->hsent < headlen) {
      ssize_t n = send(c->fd, head + c->hsent, headlen - c->hsent, MSG_MORE);
      if (n < 0) return errno == EAGAIN ? 0 : -1;
      c->hsent += n;
    }
    while (c->off < filesize) {
      ssize_t n = sendfile(c->fd, filefd, &c->off, filesize - c->off);
      if (n < 0) return errno == EAGAIN ? 0 : -1;
      if (n == 0) return -1;
    }
    c->off = -1;
  }
}

static void *worker(void *arg) {
  (void)arg;
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l, (void *)&a, sizeof a) || listen(l, 1024)) { perror("bind/listen"); exit(1); }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c = calloc(1, sizeof *c);
          c->fd = fd;
          c->off = -1;
          struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      int dead = 0;
      if (evs[i].events & EPOLLIN) {
        for (;;) {
          ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
          if (r > 0) { c->len += r; if (c->len == (int)sizeof c->buf) { dead = 1; break; } continue; }
          if (r == 0 || errno != EAGAIN) dead = 1;
          break;
        }
      }
      if (!dead && pump(c) < 0) dead = 1;
      if (dead) { close(c->fd); free(c); }
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: sfloop PORT FILE WORKERS\n"); return 2; }
  port = atoi(argv[1]);
  filefd = open(argv[2], O_RDONLY);
  struct stat st;
  if (filefd < 0 || fstat(filefd, &st)) { perror(argv[2]); return 1; }
  filesize = st.st_size;
  headlen = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: video/iso.segment\r\nContent-Length: %lld\r\n\r\n",
                     (long long)filesize);
  // A client that closes mid-body must not kill the server (wrk does at the end of a run).
  signal(SIGPIPE, SIG_IGN);
  int w = atoi(argv[3]);
  pthread_t t[64];
  for (int i = 0; i < w; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < w; i++) pthread_join(t[i], NULL);
}
