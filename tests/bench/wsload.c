/*
 * wsload: many WebSocket clients in one process, for the latency benchmarks.
 *
 * The same job as loadgen.MinimalWebSocket (upgrade handshake, unmasked
 * server frames parsed in place, masked client frames, pong on ping), in C
 * with epoll, so that the load process costs the machine it shares with the
 * service a fraction of what the Python clients cost. loadgen.CSocketWorker
 * builds it with the system's cc and drives it over stdin/stdout.
 *
 * stdin, first:  "<host> <port> <path> <token or -> <count> <track markers 0|1>"
 *        then:   one line per socket: its topics, space-separated
 *        later:  commands, one per line: stats | reset | markers | arrivals | close
 * stdout: "ready <json stats>" once every socket is open and has its snapshots,
 *         then one JSON line per command (markers/arrivals: per socket, a list
 *         of [marker, unix time] pairs: read by this process, or arrived at the
 *         socket by the kernel's SO_TIMESTAMPNS receive timestamp).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MARKER_BASE 900000000LL
#define MARKER_KEY "\"vma_eta_seconds\":"
#define RECV_SIZE 262144

typedef struct {
    long long value;
    double read_at, arrived_at;
} Marker;

typedef struct {
    int fd;
    int handshaking;
    int closed;
    int close_code;
    int topic_count;
    char **topics;
    unsigned char *buf; /* bytes of an unfinished frame */
    size_t buf_len, buf_cap;
    long long messages, snapshots;
    Marker *markers;
    size_t marker_len, marker_cap;
} Client;

static Client *clients;
static int count, track;
static long long total_bytes, failures;
static unsigned char recv_buf[RECV_SIZE];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void send_all(Client *c, const unsigned char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { /* only small control frames are sent: wait for room */
                struct timespec pause = {0, 100000};
                nanosleep(&pause, NULL);
                continue;
            }
            c->closed = 1;
            return;
        }
        data += n;
        len -= (size_t)n;
    }
}

static void send_frame(Client *c, int opcode, const unsigned char *payload, size_t len) {
    unsigned char frame[16 + 1024];
    size_t head = 0;
    if (len > 1024) return;
    frame[head++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        frame[head++] = (unsigned char)(0x80 | len);
    } else {
        frame[head++] = 0x80 | 126;
        frame[head++] = (unsigned char)(len >> 8);
        frame[head++] = (unsigned char)len;
    }
    unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(frame + head, key, 4);
    head += 4;
    for (size_t i = 0; i < len; i++) frame[head + i] = payload[i] ^ key[i % 4];
    send_all(c, frame, head + len);
}

static void add_marker(Client *c, long long value, double read_at, double arrived_at) {
    if (c->marker_len == c->marker_cap) {
        c->marker_cap = c->marker_cap ? 2 * c->marker_cap : 64;
        c->markers = realloc(c->markers, c->marker_cap * sizeof(Marker));
        if (!c->markers) die("realloc");
    }
    c->markers[c->marker_len++] = (Marker){value, read_at, arrived_at};
}

static void on_text(Client *c, const unsigned char *payload, size_t len, double read_at, double arrived_at) {
    static const char snapshot[] = "{\"type\":\"snapshot\"";
    c->messages++;
    total_bytes += (long long)len;
    if (len >= sizeof snapshot - 1 && memcmp(payload, snapshot, sizeof snapshot - 1) == 0) c->snapshots++;
    if (!track) return;
    const size_t key_len = sizeof MARKER_KEY - 1;
    const unsigned char *at = payload, *end = payload + len;
    while ((at = memmem(at, (size_t)(end - at), MARKER_KEY, key_len)) != NULL) {
        at += key_len;
        long long value = 0;
        int digits = 0;
        while (at < end && *at >= '0' && *at <= '9' && digits < 18) value = value * 10 + (*at++ - '0'), digits++;
        if (digits && value >= MARKER_BASE) add_marker(c, value, read_at, arrived_at);
    }
}

/* Parse whole frames from data; keep an unfinished one in c->buf. */
static void on_bytes(Client *c, const unsigned char *data, size_t size, double read_at, double arrived_at) {
    if (c->buf_len) {
        if (c->buf_len + size > c->buf_cap) {
            c->buf_cap = c->buf_len + size;
            c->buf = realloc(c->buf, c->buf_cap);
            if (!c->buf) die("realloc");
        }
        memcpy(c->buf + c->buf_len, data, size);
        c->buf_len += size;
        data = c->buf;
        size = c->buf_len;
    }
    size_t pos = 0;
    while (size - pos >= 2) {
        unsigned b0 = data[pos], b1 = data[pos + 1];
        uint64_t length = b1 & 0x7F;
        size_t head = 2;
        if (length == 126) {
            if (size - pos < 4) break;
            length = ((uint64_t)data[pos + 2] << 8) | data[pos + 3];
            head = 4;
        } else if (length == 127) {
            if (size - pos < 10) break;
            length = 0;
            for (int i = 0; i < 8; i++) length = (length << 8) | data[pos + 2 + i];
            head = 10;
        }
        if (size - pos - head < length) break;
        const unsigned char *payload = data + pos + head;
        unsigned opcode = b0 & 0x0F;
        pos += head + length;
        if (opcode == 1) {
            on_text(c, payload, length, read_at, arrived_at);
        } else if (opcode == 9) {
            send_frame(c, 0xA, payload, length);
        } else if (opcode == 8) {
            c->close_code = length >= 2 ? (payload[0] << 8) | payload[1] : 0;
            send_frame(c, 0x8, payload, length >= 2 ? 2 : 0);
            c->closed = 1;
            return;
        }
    }
    size_t rest = size - pos;
    if (rest && data != c->buf) {
        if (rest > c->buf_cap) {
            c->buf_cap = rest;
            c->buf = realloc(c->buf, c->buf_cap);
            if (!c->buf) die("realloc");
        }
        memcpy(c->buf, data + pos, rest);
    } else if (rest) {
        memmove(c->buf, c->buf + pos, rest);
    }
    c->buf_len = rest;
}

static void on_readable(Client *c) {
    char control[CMSG_SPACE(sizeof(struct timespec))];
    for (;;) {
        struct iovec iov = {recv_buf, RECV_SIZE};
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = recvmsg(c->fd, &msg, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) {
            c->closed = 1;
            return;
        }
        double read_at = now(), arrived_at = read_at;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                arrived_at = ts.tv_sec + ts.tv_nsec / 1e9;
            }
        }
        unsigned char *data = recv_buf;
        size_t size = (size_t)n;
        if (c->handshaking) {
            unsigned char *end = memmem(data, size, "\r\n\r\n", 4);
            if (!end || memcmp(data, "HTTP/1.1 101", 12) != 0) { /* a refusal (or a split head: not expected) */
                c->closed = 1;
                failures++;
                return;
            }
            c->handshaking = 0;
            for (int t = 0; t < c->topic_count; t++) {
                char message[512];
                int len = snprintf(message, sizeof message, "{\"type\":\"subscribe\",\"topic\":\"%s\"}", c->topics[t]);
                send_frame(c, 0x1, (unsigned char *)message, (size_t)len);
            }
            size -= (size_t)(end + 4 - data);
            data = end + 4;
        }
        if (size) on_bytes(c, data, size, read_at, arrived_at);
        if (c->closed) return;
        if ((size_t)n < RECV_SIZE) return;
    }
}

static int open_client(Client *c, const struct sockaddr_in *addr, const char *host, const char *path, const char *token) {
    int one = 1;
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0) {
            setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
            char request[2048];
            int len = snprintf(request, sizeof request,
                               "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
                               path, host);
            if (strcmp(token, "-") != 0)
                len += snprintf(request + len, sizeof request - (size_t)len, "Authorization: Bearer %s\r\n", token);
            len += snprintf(request + len, sizeof request - (size_t)len, "\r\n");
            c->fd = fd;
            send_all(c, (unsigned char *)request, (size_t)len);
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            c->handshaking = 1;
            return 0;
        }
        close(fd);
        struct timespec pause = {0, 200000000L * (attempt + 1)};
        nanosleep(&pause, NULL);
    }
    return -1;
}

static void print_stats(const char *prefix) {
    long long open = 0, closed = 0, messages = 0, snapshots = 0;
    for (int i = 0; i < count; i++) {
        if (clients[i].fd < 0) continue;
        clients[i].closed ? closed++ : open++;
        messages += clients[i].messages;
        snapshots += clients[i].snapshots;
    }
    printf("%s{\"open\": %lld, \"failures\": %lld, \"messages\": %lld, \"snapshots\": %lld, \"bytes\": %lld, "
           "\"closed\": %lld, \"close_codes\": [",
           prefix, open, failures, messages, snapshots, total_bytes, closed);
    int first = 1;
    for (int code = 1000; code < 5000; code++) {
        for (int i = 0; i < count; i++) {
            if (clients[i].close_code == code) {
                printf("%s%d", first ? "" : ", ", code);
                first = 0;
                break;
            }
        }
    }
    printf("]}\n");
    fflush(stdout);
}

static void print_markers(int arrived) {
    putchar('[');
    for (int i = 0; i < count; i++) {
        Client *c = &clients[i];
        if (c->fd < 0) continue;
        printf("%s[", i ? ", " : "");
        for (size_t m = 0; m < c->marker_len; m++)
            printf("%s[%lld, %.6f]", m ? ", " : "", c->markers[m].value,
                   arrived ? c->markers[m].arrived_at : c->markers[m].read_at);
        putchar(']');
    }
    printf("]\n");
    fflush(stdout);
}

static char *read_line(void) {
    static char *line = NULL;
    static size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n <= 0) return NULL;
    if (line[n - 1] == '\n') line[n - 1] = 0;
    return line;
}

static void drain(int epoll_fd, int timeout_ms) {
    struct epoll_event events[512];
    int n = epoll_wait(epoll_fd, events, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        if (events[i].data.u32 == (uint32_t)count) continue; /* stdin: the caller looks */
        Client *c = &clients[events[i].data.u32];
        if (!c->closed) on_readable(c);
        if (c->closed) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    }
}

int main(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    char host[256], path[256], token[4096];
    int port;
    char *line = read_line();
    if (!line || sscanf(line, "%255s %d %255s %4095s %d %d", host, &port, path, token, &count, &track) != 6) {
        fprintf(stderr, "wsload: bad configuration line\n");
        return 2;
    }
    clients = calloc((size_t)count, sizeof(Client));
    if (!clients) die("calloc");
    for (int i = 0; i < count; i++) {
        char *topics = read_line();
        if (!topics) return 2;
        Client *c = &clients[i];
        c->fd = -1;
        c->close_code = -1;
        for (char *topic = strtok(topics, " "); topic; topic = strtok(NULL, " ")) {
            c->topics = realloc(c->topics, sizeof(char *) * (size_t)(c->topic_count + 1));
            c->topics[c->topic_count++] = strdup(topic);
        }
    }
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "wsload: host must be an IPv4 address\n");
        return 2;
    }
    int epoll_fd = epoll_create1(0);
    if (epoll_fd < 0) die("epoll_create1");
    char host_header[300];
    snprintf(host_header, sizeof host_header, "%s:%d", host, port);
    for (int i = 0; i < count; i++) {
        Client *c = &clients[i];
        if (open_client(c, &addr, host_header, path, token) < 0) {
            failures++;
            continue;
        }
        struct epoll_event event = {EPOLLIN, {.u32 = (uint32_t)i}};
        epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event);
        if (i % 64 == 63) drain(epoll_fd, 0); /* keep up with the handshakes as they are answered */
    }
    double deadline = now() + 120;
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < count; i++) {
            Client *c = &clients[i];
            if (c->fd >= 0 && !c->closed && c->snapshots < c->topic_count) waiting = 1;
        }
        if (!waiting || now() > deadline) break;
        drain(epoll_fd, 100);
    }
    print_stats("ready ");
    struct epoll_event event = {EPOLLIN, {.u32 = (uint32_t)count}};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &event);
    for (;;) {
        struct epoll_event events[512];
        int n = epoll_wait(epoll_fd, events, 512, -1);
        for (int i = 0; i < n; i++) {
            if (events[i].data.u32 != (uint32_t)count) {
                Client *c = &clients[events[i].data.u32];
                if (!c->closed) on_readable(c);
                if (c->closed) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            char *command = read_line();
            if (!command || strcmp(command, "close") == 0) {
                for (int k = 0; k < count; k++) {
                    if (clients[k].fd < 0) continue;
                    if (!clients[k].closed) send_frame(&clients[k], 0x8, (const unsigned char *)"\x03\xe8", 2);
                    close(clients[k].fd);
                }
                printf("closed\n");
                fflush(stdout);
                return 0;
            }
            if (strcmp(command, "stats") == 0) {
                print_stats("");
            } else if (strcmp(command, "reset") == 0) {
                for (int k = 0; k < count; k++) clients[k].messages = clients[k].snapshots = 0, clients[k].marker_len = 0;
                total_bytes = 0;
                printf("\"ok\"\n");
                fflush(stdout);
            } else if (strcmp(command, "markers") == 0 || strcmp(command, "arrivals") == 0) {
                print_markers(strcmp(command, "arrivals") == 0);
            }
        }
    }
}
