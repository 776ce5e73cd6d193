/*
 * sendcost: the kernel's price of one small TCP send on loopback, with no
 * Python and no WebSocket in the way.
 *
 * Opens <sockets> loopback connections to itself, forks a reader for the
 * client ends, then writes a <bytes>-byte message to every server end,
 * <rounds> times, pausing <pause_us> between rounds (so the reader keeps up).
 * On loopback the sender's system call also does the receiving end's TCP
 * work, as it does for pushsvc's fan-out in the benchmarks here.
 *
 * The reader: 0 sleeps in epoll_wait (woken by the sends), 1 polls every
 * millisecond (never woken by a send), 2 never reads.
 *
 * usage:  sendcost <sockets> <rounds> <reader 0|1|2> <pause_us> <bytes>
 * stdout: one JSON line: {"cpu_us": ..., "sys_us": ..., "wall_us": ...} per send
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void cpu_times(double *all, double *sys) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    *sys = usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    *all = *sys + usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
}

static double monotonic(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
}

static void read_forever(int *fds, int count, int reader) {
    static char buffer[65536];
    struct epoll_event events[512];
    int epoll = epoll_create1(0);
    if (reader == 2)
        for (;;) pause();
    for (int i = 0; i < count; i++) {
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fds[i]};
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        epoll_ctl(epoll, EPOLL_CTL_ADD, fds[i], &event);
    }
    for (;;) {
        int ready = epoll_wait(epoll, events, 512, reader == 0 ? -1 : 0);
        for (int i = 0; i < ready; i++)
            while (read(events[i].data.fd, buffer, sizeof buffer) > 0) {
            }
        if (reader == 1 && ready < 512) usleep(1000);
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: sendcost <sockets> <rounds> <reader 0|1|2> <pause_us> <bytes>\n");
        return 2;
    }
    int count = atoi(argv[1]), rounds = atoi(argv[2]), reader = atoi(argv[3]), pause_us = atoi(argv[4]);
    size_t size = (size_t)atoi(argv[5]);
    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 4096) ||
        getsockname(listener, (struct sockaddr *)&address, &length)) {
        perror("listen");
        return 1;
    }
    int *clients = malloc(count * sizeof(int)), *servers = malloc(count * sizeof(int));
    for (int i = 0; i < count; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(clients[i], (struct sockaddr *)&address, sizeof address) ||
            (servers[i] = accept(listener, NULL, NULL)) < 0) {
            perror("connect");
            return 1;
        }
        setsockopt(servers[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < count; i++) close(servers[i]);
        read_forever(clients, count, reader);
    }
    for (int i = 0; i < count; i++) close(clients[i]);
    char *message = calloc(1, size);
    memset(message, 'x', size);
    usleep(200000);
    double cpu0, sys0, cpu1, sys1;
    cpu_times(&cpu0, &sys0);
    double start = monotonic();
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < count; i++)
            if (send(servers[i], message, size, 0) != (ssize_t)size) {
                perror("send");
                kill(child, SIGKILL);
                return 1;
            }
        if (pause_us) usleep(pause_us);
    }
    double wall = monotonic() - start - rounds * pause_us / 1e6;
    cpu_times(&cpu1, &sys1);
    double sends = (double)count * rounds;
    printf("{\"cpu_us\": %.3f, \"sys_us\": %.3f, \"wall_us\": %.3f}\n", (cpu1 - cpu0) / sends * 1e6,
           (sys1 - sys0) / sends * 1e6, wall / sends * 1e6);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}
