#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the `plain_handshake` and `curve_handshake` targets.

Each seed is a script (see fuzz/src/secure_handshake.rs) encoded the way `arbitrary` 1.5
decodes it: integers little-endian, a bool is a byte's low bit, an enum variant is
`(u32 * variant_count) >> 32`, a Vec is a `1` byte before each element and a `0` after the
last, an Option is a bool then the value. Keep the step and tamper tables below in the order
of the Rust enums; after changing those enums, regenerate:

    python3 fuzz/secure_seeds.py plain tests/fixtures/fuzz/plain_handshake
    python3 fuzz/secure_seeds.py curve tests/fixtures/fuzz/curve_handshake

(file names carry a hash of the content: delete the old files first).
"""
import hashlib, os, sys

def u8(x): return bytes([x])
def u16(x): return x.to_bytes(2, 'little')
def u32(x): return x.to_bytes(4, 'little')
def u64(x): return x.to_bytes(8, 'little')
def b(x): return u8(1 if x else 0)
def var(k, n): return u32(((k << 32) + n - 1) // n)
def opt(v): return b'\x00' if v is None else b'\x01' + v
def vec(items): return b''.join(b'\x01' + i for i in items) + b'\x00'
def bvec(bs): return vec([u8(c) for c in bs])

# --- Common ---
def types_compatible(a, b_): return var(0, 2) + u8(a) + u8(b_)
def types_any(a, b_): return var(1, 2) + u8(a) + u8(b_)
PAIR, PUB, SUB, REQ, REP, DEALER, ROUTER, PULL, PUSH, XPUB, XSUB = range(11)

G_GENUINE = var(0, 6)
def g_version(ma, mi): return var(1, 6) + u8(ma) + u8(mi)
def g_mech(k, other=b''): return var(2, 6) + var(k, 4) + (bvec(other) if k == 3 else b'')
G_SAMEROLE = var(3, 6)
def g_flip(at, mask): return var(4, 6) + u8(at) + u8(mask)
def g_trunc(n): return var(5, 6) + u8(n)

def common(types, steps, greeting=G_GENUINE, trid=b'', prid=b'', hs_timeout=None,
           hb_interval=None, hb_timeout=None, hb_ttl=None, chunks=()):
    o = lambda v: opt(None if v is None else u16(v))
    return (types + bvec(trid) + bvec(prid) + o(hs_timeout) + o(hb_interval) + o(hb_timeout)
            + o(hb_ttl) + greeting + vec([u16(c) for c in chunks]) + vec(steps))

# --- Steps (19 variants) ---
N = 19
GENUINE = var(0, N)
def batch(n): return var(1, N) + u8(n)
LONG = var(2, N)
def tampered(t): return var(3, N) + t
DROP = var(4, N)
SWAP = var(5, N)
def replay(i): return var(6, N) + u16(i)
def reflect(i): return var(7, N) + u16(i)
def command(name_k, data, any_name=b''):
    name = var(name_k, 9) + (bvec(any_name) if name_k == 8 else b'')
    return var(8, N) + name + bvec(data)
HELLO, WELCOME, INITIATE, READY, MESSAGE, ERROR, PING, SUBSCRIBE, ANY = range(9)
def data(more, body): return var(9, N) + b(more) + bvec(body)
def misspelt(reason): return var(10, N) + bvec(reason)
def forge(nonce_k, more, cmd, rest, exact=0):
    nonce = var(nonce_k, 5) + (u64(exact) if nonce_k == 4 else b'')
    return var(11, N) + nonce + b(more) + b(cmd) + bvec(rest)
N_ZERO, N_LAST, N_NEXT, N_MAX, N_EXACT = range(5)
def raw(bs): return var(12, N) + bvec(bs)
def peer_sends(frames, cmd=None): return var(13, N) + vec([bvec(f) for f in frames]) + opt(cmd)
def pc_ping(ttl, ctx): return var(0, 7) + u16(ttl) + bvec(ctx)
def pc_subscribe(p): return var(2, 7) + bvec(p)
def pc_unknown(name, d): return var(4, 7) + bvec(name) + bvec(d)
PC_READY = var(5, 7)
def pc_error(r): return var(6, 7) + bvec(r)
def target_sends(frames): return var(14, N) + vec([bvec(f) for f in frames])
def hold(n): return var(15, N) + u8(n)
def chunks(cs): return var(16, N) + vec([u16(c) for c in cs])
def ms(n): return var(17, N) + u16(n)
def secs(n): return var(18, N) + u8(n)

# Tamper (6 variants)
def t_truncate(n): return var(0, 6) + u16(n)
def t_extend(bs): return var(1, 6) + bvec(bs)
def t_flip(at, mask): return var(2, 6) + u16(at) + u8(mask)
def t_flags(more, cmd): return var(3, 6) + b(more) + b(cmd)
def t_overwrite(at, bs): return var(4, 6) + u16(at) + bvec(bs)
def t_field(field, byte, bit): return var(5, 6) + u8(field) + u8(byte) + u8(bit)

# --- PLAIN ---
def plain(server, creds_k, zap_k, com, custom=(b'', b'')):
    creds = var(creds_k, 5) + (bvec(custom[0]) + bvec(custom[1]) if creds_k == 4 else b'')
    return b(server) + creds + var(zap_k, 6) + com
VALID, WRONGPASS, UNKNOWNUSER, EMPTY, CUSTOM = range(5)
POLICY, MISSING, DENYADDR, ALLOWOTHER, TEMPFAIL, INTERNAL = range(6)

# --- CURVE ---
def curve(server, com, spair=0, cpair=1, wrong=None, zap=(1,)):
    z = var(zap[0], 8) + (u8(zap[1]) if zap[0] == 3 else b'')
    return b(server) + u8(spair) + u8(cpair) + opt(wrong) + z + com
W_OTHER = lambda i: var(0, 4) + u8(i)
W_HIGHBIT = var(1, 4)
W_ZERO = var(2, 4)
Z_MISSING, Z_ALLOWCLIENT, Z_ALLOWANY, Z_ALLOWKEY, Z_DENYALL, Z_DENYADDR, Z_TEMP, Z_INTERNAL = range(8)

READY_ROUTER = b'\x0bSocket-Type\x00\x00\x00\x06ROUTER'

PLAIN_SEEDS = {
    'server-ready-traffic': plain(True, VALID, POLICY, common(types_compatible(ROUTER, 1), [
        GENUINE, GENUINE, peer_sends([b'hello', b'world']), GENUINE, target_sends([b'id', b'', b'reply']),
        peer_sends([b'x' * 300], pc_ping(0, b'ab')), batch(1)], prid=b'client-1')),
    'client-ready-traffic': plain(False, VALID, POLICY, common(types_compatible(DEALER, 1), [
        GENUINE, GENUINE, peer_sends([b'a', b'b', b'c']), LONG, target_sends([b'', b'req']),
        peer_sends([b'one']), peer_sends([b'two']), SWAP, GENUINE], trid=b'dealer-7')),
    'server-wrong-password-AuthenticationFailed': plain(True, WRONGPASS, POLICY, common(types_compatible(PULL, 0), [GENUINE])),
    'client-refused-Unauthorized': plain(False, UNKNOWNUSER, POLICY, common(types_compatible(PUSH, 0), [GENUINE])),
    'server-no-authenticator-AuthenticationFailed': plain(True, VALID, MISSING, common(types_compatible(REP, 0), [GENUINE])),
    'server-forged-hello-with-valid-credentials': plain(True, WRONGPASS, POLICY, common(types_compatible(PULL, 0), [
        command(HELLO, b'\x01u\x01p'), DROP, GENUINE, peer_sends([b'm']), GENUINE])),
    'client-forged-ready': plain(False, VALID, POLICY, common(types_compatible(DEALER, 1), [
        GENUINE, command(READY, READY_ROUTER), peer_sends([b'after']), DROP, GENUINE])),
    'client-libzmq-misspelt-error-Unauthorized': plain(False, WRONGPASS, POLICY, common(types_compatible(REQ, 0), [misspelt(b'400')])),
    'server-HandshakeTimeout': plain(True, VALID, POLICY, common(types_compatible(PULL, 0), [GENUINE, hold(3), GENUINE, ms(150)], hs_timeout=100)),
    'client-HeartbeatTimeout': plain(False, VALID, POLICY, common(types_compatible(PUSH, 0), [
        GENUINE, GENUINE, ms(15), ms(25)], hb_interval=10, hb_timeout=20)),
    'client-replayed-ready-DuplicateReady': plain(False, VALID, POLICY, common(types_compatible(PAIR, 0), [
        GENUINE, GENUINE, peer_sends([b'p']), GENUINE, replay(1)])),
    'server-split-one-byte-at-a-time': plain(True, VALID, POLICY, common(types_compatible(XPUB, 0), [
        GENUINE, GENUINE, peer_sends([b'\x01topic']), peer_sends([b'not', b'sub']), batch(3)], chunks=[0])),
}

CURVE_SEEDS = {
    'server-ready-traffic': curve(True, common(types_compatible(ROUTER, 1), [
        GENUINE, GENUINE, peer_sends([b'hello', b'world']), GENUINE, target_sends([b'id', b'', b'reply']),
        peer_sends([b'x' * 300], pc_subscribe(b'topic')), batch(1)], prid=b'client-1')),
    'client-ready-traffic': curve(False, common(types_compatible(DEALER, 1), [
        GENUINE, GENUINE, peer_sends([b'a', b'b', b'c']), LONG, target_sends([b'', b'req']),
        peer_sends([b'one'], pc_ping(0, b'ctx'))] + [GENUINE] * 2, trid=b'dealer-7'), zap=(Z_MISSING,)),
    'server-replayed-box-NonceNotIncreasing': curve(True, common(types_compatible(PULL, 0), [
        GENUINE, GENUINE, peer_sends([b'once']), GENUINE, replay(2)])),
    'client-reordered-boxes-NonceNotIncreasing': curve(False, common(types_compatible(PUSH, 0), [
        GENUINE, GENUINE, peer_sends([b'one']), peer_sends([b'two']), SWAP, GENUINE])),
    'server-forged-box-Crypto': curve(True, common(types_compatible(PULL, 0), [
        GENUINE, GENUINE, forge(N_MAX, False, False, b'\x00' * 24)])),
    'client-box-tag-flipped-Crypto': curve(False, common(types_compatible(PUSH, 0), [
        GENUINE, GENUINE, peer_sends([b'secret']), tampered(t_field(1, 3, 0))])),
    'server-box-with-more-MalformedCommand': curve(True, common(types_compatible(PULL, 0), [
        GENUINE, GENUINE, peer_sends([b'm']), tampered(t_flags(True, False))])),
    'server-box-in-command-frame-accepted': curve(True, common(types_compatible(PULL, 0), [
        GENUINE, GENUINE, peer_sends([b'm']), tampered(t_flags(False, True)), peer_sends([b'n']), GENUINE])),
    'client-cleartext-after-handshake-ExpectedMessageBox': curve(False, common(types_compatible(PUSH, 0), [
        GENUINE, GENUINE, data(False, b'in clear')])),
    'server-hello-transient-high-bit-flipped-Crypto': curve(True, common(types_compatible(PULL, 0), [
        tampered(t_field(2, 31, 7)), GENUINE])),
    'server-client-given-high-bit-flipped-key-Crypto': curve(True, common(types_compatible(PULL, 0), [
        GENUINE, GENUINE]), wrong=W_HIGHBIT),
    'client-low-order-server-key-Crypto': curve(False, common(types_compatible(PUSH, 0), [GENUINE]), wrong=W_ZERO),
    'server-denied-AuthenticationFailed': curve(True, common(types_compatible(PULL, 0), [GENUINE, GENUINE]), zap=(Z_DENYALL,)),
    'client-denied-Unauthorized': curve(False, common(types_compatible(PUSH, 0), [GENUINE, GENUINE]), zap=(Z_ALLOWKEY, 2)),
    'server-initiate-tampered-Crypto': curve(True, common(types_compatible(PULL, 0), [
        GENUINE, tampered(t_field(3, 40, 1))])),
    'server-hello-replayed-UnexpectedCommand': curve(True, common(types_compatible(PULL, 0), [GENUINE, replay(0)])),
    'client-heartbeat-boxed': curve(False, common(types_compatible(SUB, 0), [
        GENUINE, GENUINE, ms(20), GENUINE, peer_sends([b'\x00']), ms(20), GENUINE], hb_interval=10, hb_timeout=30)),
    'server-reflected-welcome-UnexpectedCommand': curve(True, common(types_compatible(PULL, 0), [GENUINE, reflect(0)])),
}

if __name__ == '__main__':
    which, outdir = sys.argv[1], sys.argv[2]
    seeds = PLAIN_SEEDS if which == 'plain' else CURVE_SEEDS
    os.makedirs(outdir, exist_ok=True)
    for name, data_ in seeds.items():
        h = hashlib.sha1(data_).hexdigest()[:10]
        path = os.path.join(outdir, f'seed-{name}-{h}')
        open(path, 'wb').write(data_)
        print(path)
