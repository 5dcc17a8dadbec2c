/* libzmq's CURVE (libsodium) PUSH->PULL throughput and handshake rate, the reference side of
 * examples/curve_compare.rs.
 *
 *   curve_thr pull ENDPOINT SIZE COUNT SERVER_PUBLIC SERVER_SECRET
 *       PULL binds ENDPOINT as the CURVE server (SERVER_SECRET), receives COUNT messages of
 *       SIZE bytes with one zmq_msg_recv each, times them from the first one on (as libzmq's
 *       perf/local_thr) and prints local_thr's four lines.
 *   curve_thr push ENDPOINT SIZE COUNT SERVER_PUBLIC SERVER_SECRET
 *       PUSH connects as a CURVE client with a key pair from zmq_curve_keypair and sends COUNT
 *       messages, each a fresh zmq_msg_init_size with the payload copied in (as the ferromq
 *       sender copies into a fresh Message), then closes with the default infinite linger so
 *       zmq_ctx_term returns once everything is written.
 *   curve_thr handshake ENDPOINT COUNT SERVER_PUBLIC SERVER_SECRET
 *       One process: a PULL CURVE server binds ENDPOINT (tcp://127.0.0.1:0 is fine); then COUNT
 *       times in sequence a new PUSH client socket connects, sends one 1-byte message, the
 *       server receives it, and the client is closed. Prints the connections per second.
 *   curve_thr keypair
 *       Prints a fresh key pair ("public: Z85" and "secret: Z85").
 *
 * Keys are 40-character Z85 text. Passing "-" for both keys runs the NULL mechanism instead.
 * Tuning: one I/O thread (libzmq's default), default HWMs (1000), OS-default kernel buffers.
 *
 * Build (examples/curve_compare.rs does this itself):
 *   gcc -O2 -o curve_thr curve_thr.c path/to/libzmq-*.so.5.2.5 -Wl,-rpath,path/to
 */
#include "zmq_min.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void die (const char *what)
{
    fprintf (stderr, "curve_thr: %s: %s\n", what, zmq_strerror (zmq_errno ()));
    exit (1);
}

static int parse_count (const char *text, unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    *out = strtoull (text, &end, 10);
    return errno == 0 && end != text && *end == '\0';
}

/* The CURVE keys, or both NULL for the NULL mechanism. */
struct keys
{
    const char *server_public;
    const char *server_secret;
};

static int read_keys (const char *public_key, const char *secret_key, struct keys *keys)
{
    if (strcmp (public_key, "-") == 0 && strcmp (secret_key, "-") == 0) {
        keys->server_public = NULL;
        keys->server_secret = NULL;
        return 1;
    }
    if (strlen (public_key) != 40 || strlen (secret_key) != 40)
        return 0;
    keys->server_public = public_key;
    keys->server_secret = secret_key;
    return 1;
}

static void set_option (void *socket, int option, const void *value, size_t len, const char *what)
{
    if (zmq_setsockopt (socket, option, value, len) != 0)
        die (what);
}

static void make_server (void *socket, const struct keys *keys)
{
    if (!keys->server_secret)
        return;
    int one = 1;
    set_option (socket, ZMQ_CURVE_SERVER, &one, sizeof one, "ZMQ_CURVE_SERVER");
    set_option (socket, ZMQ_CURVE_SECRETKEY, keys->server_secret, 40, "ZMQ_CURVE_SECRETKEY");
}

/* The client key pair: generated once per process, as a user holds one long-term pair. */
static char client_public[41], client_secret[41];

static void make_client (void *socket, const struct keys *keys)
{
    if (!keys->server_public)
        return;
    if (client_public[0] == '\0' && zmq_curve_keypair (client_public, client_secret) != 0)
        die ("zmq_curve_keypair");
    set_option (socket, ZMQ_CURVE_SERVERKEY, keys->server_public, 40, "ZMQ_CURVE_SERVERKEY");
    set_option (socket, ZMQ_CURVE_PUBLICKEY, client_public, 40, "ZMQ_CURVE_PUBLICKEY");
    set_option (socket, ZMQ_CURVE_SECRETKEY, client_secret, 40, "ZMQ_CURVE_SECRETKEY");
}

static void *new_context (void)
{
    void *context = zmq_ctx_new ();
    if (!context)
        die ("zmq_ctx_new");
    if (zmq_ctx_set (context, ZMQ_IO_THREADS, 1) != 0)
        die ("ZMQ_IO_THREADS");
    return context;
}

/* A socket of TYPE in CONTEXT: a CURVE server bound to ENDPOINT (BIND) or a CURVE client
 * connected to it, or the NULL mechanism when KEYS say so. */
static void *open_socket (void *context, int type, const struct keys *keys, int bind,
                          const char *endpoint)
{
    void *socket = zmq_socket (context, type);
    if (!socket)
        die ("zmq_socket");
    if (bind) {
        make_server (socket, keys);
        if (zmq_bind (socket, endpoint) != 0)
            die ("zmq_bind");
    } else {
        make_client (socket, keys);
        if (zmq_connect (socket, endpoint) != 0)
            die ("zmq_connect");
    }
    return socket;
}

static void receive_sized (void *socket, zmq_msg_t *message, size_t size)
{
    if (zmq_msg_recv (message, socket, 0) < 0)
        die ("zmq_msg_recv");
    if (zmq_msg_size (message) != size) {
        fprintf (stderr, "curve_thr: message of %zu bytes, expected %zu\n",
                 zmq_msg_size (message), size);
        exit (1);
    }
}

static int run_pull (const char *endpoint, size_t size, unsigned long long count,
                     const struct keys *keys)
{
    void *context = new_context ();
    void *pull = open_socket (context, ZMQ_PULL, keys, 1, endpoint);
    zmq_msg_t message;
    zmq_msg_init (&message);
    receive_sized (pull, &message, size);
    /* As libzmq's perf/local_thr: the clock starts at the first message, so the connection
     * and the handshake are not measured. */
    double start = now_seconds ();
    for (unsigned long long i = 1; i < count; i++)
        receive_sized (pull, &message, size);
    double elapsed = now_seconds () - start;
    if (elapsed < 1e-9)
        elapsed = 1e-9;
    zmq_msg_close (&message);
    double throughput = (double) count / elapsed;
    double megabits = throughput * (double) size * 8.0 / 1e6;
    printf ("message size: %zu [B]\n", size);
    printf ("message count: %llu\n", count);
    printf ("mean throughput: %.0f [msg/s]\n", throughput);
    printf ("mean throughput: %.3f [Mb/s]\n", megabits);
    fflush (stdout);
    zmq_close (pull);
    zmq_ctx_term (context);
    return 0;
}

static int run_push (const char *endpoint, size_t size, unsigned long long count,
                     const struct keys *keys)
{
    void *context = new_context ();
    void *push = open_socket (context, ZMQ_PUSH, keys, 0, endpoint);
    unsigned char *payload = calloc (size ? size : 1, 1);
    for (unsigned long long i = 0; i < count; i++) {
        zmq_msg_t message;
        if (zmq_msg_init_size (&message, size) != 0)
            die ("zmq_msg_init_size");
        memcpy (zmq_msg_data (&message), payload, size);
        if (zmq_msg_send (&message, push, 0) < 0)
            die ("zmq_msg_send");
    }
    free (payload);
    /* Default linger (-1): zmq_ctx_term waits until every message is written. */
    zmq_close (push);
    zmq_ctx_term (context);
    return 0;
}

static int run_handshake (const char *endpoint, unsigned long long count, const struct keys *keys)
{
    void *context = new_context ();
    void *server = open_socket (context, ZMQ_PULL, keys, 1, endpoint);
    char bound[256];
    size_t bound_len = sizeof bound;
    if (zmq_getsockopt (server, ZMQ_LAST_ENDPOINT, bound, &bound_len) != 0)
        die ("ZMQ_LAST_ENDPOINT");
    /* The client key pair is made before the clock starts, as ferromq's side does. */
    if (keys->server_public && zmq_curve_keypair (client_public, client_secret) != 0)
        die ("zmq_curve_keypair");
    int zero = 0;
    char byte = 'x';
    char received[8];
    double start = now_seconds ();
    for (unsigned long long i = 0; i < count; i++) {
        void *client = zmq_socket (context, ZMQ_PUSH);
        if (!client)
            die ("zmq_socket (client)");
        make_client (client, keys);
        set_option (client, ZMQ_LINGER, &zero, sizeof zero, "ZMQ_LINGER");
        if (zmq_connect (client, bound) != 0)
            die ("zmq_connect");
        if (zmq_send (client, &byte, 1, 0) != 1)
            die ("zmq_send");
        if (zmq_recv (server, received, sizeof received, 0) != 1)
            die ("zmq_recv");
        zmq_close (client);
    }
    double elapsed = now_seconds () - start;
    if (elapsed < 1e-9)
        elapsed = 1e-9;
    printf ("connection count: %llu\n", count);
    printf ("handshake rate: %.0f [conn/s]\n", (double) count / elapsed);
    fflush (stdout);
    zmq_close (server);
    zmq_ctx_term (context);
    return 0;
}

static int usage (void)
{
    fprintf (stderr,
             "usage: curve_thr pull|push ENDPOINT SIZE COUNT SERVER_PUBLIC SERVER_SECRET\n"
             "       curve_thr handshake ENDPOINT COUNT SERVER_PUBLIC SERVER_SECRET\n"
             "       curve_thr keypair\n"
             "keys are 40 Z85 characters; '-' '-' runs the NULL mechanism\n");
    return 2;
}

int main (int argc, char **argv)
{
    if (argc == 2 && strcmp (argv[1], "keypair") == 0) {
        char public_key[41], secret_key[41];
        if (zmq_curve_keypair (public_key, secret_key) != 0)
            die ("zmq_curve_keypair");
        int major, minor, patch;
        zmq_version (&major, &minor, &patch);
        printf ("libzmq: %d.%d.%d curve: %d\n", major, minor, patch, zmq_has ("curve"));
        printf ("public: %s\nsecret: %s\n", public_key, secret_key);
        return 0;
    }
    struct keys keys;
    unsigned long long size, count;
    if (argc == 7 && (strcmp (argv[1], "pull") == 0 || strcmp (argv[1], "push") == 0)) {
        if (!parse_count (argv[3], &size) || !parse_count (argv[4], &count) || count == 0
            || !read_keys (argv[5], argv[6], &keys))
            return usage ();
        if (strcmp (argv[1], "pull") == 0)
            return run_pull (argv[2], (size_t) size, count, &keys);
        return run_push (argv[2], (size_t) size, count, &keys);
    }
    if (argc == 6 && strcmp (argv[1], "handshake") == 0) {
        if (!parse_count (argv[3], &count) || count == 0 || !read_keys (argv[4], argv[5], &keys))
            return usage ();
        return run_handshake (argv[2], count, &keys);
    }
    return usage ();
}
