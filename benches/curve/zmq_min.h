/* The part of libzmq's stable C API (include/zmq.h, 4.x) that curve_thr.c uses.
 *
 * pyzmq's wheel bundles libzmq 4.3.5 (built with libsodium, so with CURVE) but not its
 * header. The numbers and prototypes below are copied from libzmq's include/zmq.h and are
 * part of its stable ABI; they have not changed since 4.0.
 */
#ifndef FERROMQ_ZMQ_MIN_H
#define FERROMQ_ZMQ_MIN_H

#include <stddef.h>

/* Context options. */
#define ZMQ_IO_THREADS 1

/* Socket types. */
#define ZMQ_PULL 7
#define ZMQ_PUSH 8

/* Socket options. */
#define ZMQ_LINGER 17
#define ZMQ_SNDHWM 23
#define ZMQ_RCVHWM 24
#define ZMQ_LAST_ENDPOINT 32
#define ZMQ_CURVE_SERVER 47
#define ZMQ_CURVE_PUBLICKEY 48
#define ZMQ_CURVE_SECRETKEY 49
#define ZMQ_CURVE_SERVERKEY 50

/* Mechanism reported by ZMQ_MECHANISM (not set by us; listed for reference). */
#define ZMQ_CURVE 2

typedef struct zmq_msg_t
{
    unsigned char _[64] __attribute__ ((aligned (sizeof (void *))));
} zmq_msg_t;

int zmq_errno (void);
const char *zmq_strerror (int errnum_);
void zmq_version (int *major_, int *minor_, int *patch_);
int zmq_has (const char *capability_);

void *zmq_ctx_new (void);
int zmq_ctx_term (void *context_);
int zmq_ctx_set (void *context_, int option_, int optval_);

void *zmq_socket (void *, int type_);
int zmq_close (void *s_);
int zmq_setsockopt (void *s_, int option_, const void *optval_, size_t optvallen_);
int zmq_getsockopt (void *s_, int option_, void *optval_, size_t *optvallen_);
int zmq_bind (void *s_, const char *addr_);
int zmq_connect (void *s_, const char *addr_);
int zmq_send (void *s_, const void *buf_, size_t len_, int flags_);
int zmq_recv (void *s_, void *buf_, size_t len_, int flags_);

int zmq_msg_init (zmq_msg_t *msg_);
int zmq_msg_init_size (zmq_msg_t *msg_, size_t size_);
int zmq_msg_send (zmq_msg_t *msg_, void *s_, int flags_);
int zmq_msg_recv (zmq_msg_t *msg_, void *s_, int flags_);
int zmq_msg_close (zmq_msg_t *msg_);
void *zmq_msg_data (zmq_msg_t *msg_);
size_t zmq_msg_size (const zmq_msg_t *msg_);

int zmq_curve_keypair (char *z85_public_key_, char *z85_secret_key_);
int zmq_curve_public (char *z85_public_key_, const char *z85_secret_key_);

#endif
