/* frankly's device side from C: scanners from signed bundles (and a
 * rolled-back policy refused), an honest conversation between two devices
 * through a platform written here with OpenSSL's HMAC (numbering, tags and
 * delivery MACs from the byte layouts in docs/franking.md, not from
 * frankly), a message the policy blocks, a forged message and an altered
 * delivery refused, the state saved and reopened, and a report sealed to
 * the moderation server. Run by tests/c_program.rs under ASan/LSan/UBSan,
 * which then opens and verifies the report in Rust:
 *   franking DIR NOW_MS
 * DIR holds: policy-v2.bundle, policy-v1.bundle, bank.bundle,
 * platform.pub (32 bytes), tag.key (32 bytes), report.pub (32 bytes),
 * banked.jpg, models/ (a link); the program writes report.bin there. */
#include "check.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char *dir;

static unsigned char *slurp(const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)size + 1);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
        perror(path);
        exit(2);
    }
    fclose(f);
    data[size] = 0;
    *len = (size_t)size;
    return data;
}

static void key_file(const char *name, uint8_t out[32]) {
    size_t len;
    unsigned char *k = slurp(name, &len);
    if (len != 32) {
        fprintf(stderr, "%s: %zu bytes, expected 32\n", name, len);
        exit(2);
    }
    memcpy(out, k, 32);
    free(k);
}

static int has(const uint8_t *data, size_t len, const char *needle) {
    return data && memmem(data, len, needle, strlen(needle)) != NULL;
}

static int error_has(const char *needle) { return strstr(frankly_last_error(), needle) != NULL; }

/* ---- The platform: numbers each message in its conversation, tags every
 * copy and MACs it for the receiving device. ---- */

typedef struct {
    uint8_t data[2048];
    size_t len;
} Bytes;

static void put(Bytes *b, const void *p, size_t n) {
    if (b->len + n > sizeof b->data) {
        fprintf(stderr, "encoding overflow\n");
        exit(2);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u32(Bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void put_u64(Bytes *b, uint64_t v) {
    put_u32(b, (uint32_t)(v >> 32));
    put_u32(b, (uint32_t)v);
}

static void put_lp(Bytes *b, const char *s) {
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

static void hmac(const uint8_t key[32], const Bytes *in, uint8_t out[32]) {
    unsigned int n = 32;
    if (!HMAC(EVP_sha256(), key, 32, in->data, in->len, out, &n) || n != 32) {
        fprintf(stderr, "HMAC failed\n");
        exit(2);
    }
}

typedef struct {
    const char *user, *device;
    uint8_t key[32]; /* the delivery-MAC key the platform gave the device */
} Member;

static uint8_t tag_key[32];
static const uint32_t TAG_KEY_ID = 7;
static uint64_t now_ms;
static char message_ids[16][32];

/* The copy of message `seq` (commitment `c`) from `from` for `to`. */
static FranklyDelivered deliver(uint64_t seq, const uint8_t c[32], const Member *from, const Member *to) {
    FranklyDelivered d;
    memset(&d, 0, sizeof d);
    memcpy(d.commitment, c, 32);
    d.conversation_id = "alice-bob";
    d.sequence = seq;
    d.sender = (FranklyParty){from->user, from->device};
    d.recipient = (FranklyParty){to->user, to->device};
    d.timestamp_ms = now_ms - 60000 + seq;
    snprintf(message_ids[seq % 16], sizeof message_ids[0], "srv-%llu", (unsigned long long)seq);
    d.server_message_id = message_ids[seq % 16];
    d.tag_key_id = TAG_KEY_ID;

    Bytes delivery = {.len = 0};
    put_lp(&delivery, d.conversation_id);
    put_u64(&delivery, d.sequence);
    put_lp(&delivery, from->user);
    put_lp(&delivery, from->device);
    put_lp(&delivery, to->user);
    put_lp(&delivery, to->device);
    put_u64(&delivery, d.timestamp_ms);
    put_lp(&delivery, d.server_message_id);

    static const char tag_domain[] = "frankly franking platform tag v2"; /* with its NUL */
    Bytes tag_input = {.len = 0};
    put(&tag_input, tag_domain, sizeof tag_domain);
    put_u32(&tag_input, TAG_KEY_ID);
    put(&tag_input, c, 32);
    put(&tag_input, delivery.data, delivery.len);
    hmac(tag_key, &tag_input, d.tag);

    static const char mac_domain[] = "frankly delivery mac v2";
    Bytes mac_input = {.len = 0};
    put(&mac_input, mac_domain, sizeof mac_domain);
    put_u32(&mac_input, TAG_KEY_ID);
    put(&mac_input, d.tag, 32);
    put(&mac_input, c, 32);
    put(&mac_input, delivery.data, delivery.len);
    hmac(to->key, &mac_input, d.delivery_mac);
    return d;
}

/* ---- The devices ---- */

typedef struct {
    Member member;
    FranklyDevice *device;
    FranklyScanner *scanner;
} Phone;

static FranklyBytes bank_bundle;
static unsigned char *policy_v2;
static size_t policy_v2_len;
static uint8_t platform_pub[32];
static char models[4096];

static void open_scanner(Phone *p) {
    FranklySetting warnings = {"sensitive_content_warnings", true}; /* the user turned it on */
    CHECK(frankly_scanner_new_signed(p->device, policy_v2, policy_v2_len, &bank_bundle, 1, platform_pub,
                                     now_ms / 1000, "adult", models, &warnings, 1, &p->scanner) == FRANKLY_OK);
}

/* What a sent message became: its commitment and the plaintext and
 * attachment ciphertexts the E2EE layer carries (copied out). */
typedef struct {
    uint8_t commitment[32];
    uint8_t *plaintext;
    size_t plaintext_len;
    uint8_t *attachment;
    size_t attachment_len;
    int has_attachment;
} Wire;

static void wire_free(Wire *w) {
    free(w->plaintext);
    free(w->attachment);
    memset(w, 0, sizeof *w);
}

/* Scans and franks `text` (with an optional attachment) on `from`; unless
 * blocked, copies the wire parts out and, if `seq` is not 0, has the
 * platform answer with the sender's own copy numbered `seq`. Returns
 * whether it was franked. */
static int frank(Phone *from, const char *id, const char *text, const FranklyAttachment *attachment, uint64_t seq,
                 Wire *wire, const char *expect_in_verdict) {
    FranklyOutgoing *out = NULL;
    CHECK(frankly_device_prepare_outgoing(from->device, from->scanner, "alice-bob", id, text, attachment,
                                          attachment ? 1 : 0, NULL, &out) == FRANKLY_OK);
    const uint8_t *verdict;
    size_t verdict_len;
    CHECK(frankly_outgoing_verdict(out, &verdict, &verdict_len) == FRANKLY_OK);
    if (expect_in_verdict) CHECK(has(verdict, verdict_len, expect_in_verdict));
    int franked = !frankly_outgoing_blocked(out);
    if (franked) {
        const uint8_t *p;
        size_t n;
        CHECK(frankly_outgoing_franked(out, &p, &n, wire->commitment) == FRANKLY_OK);
        wire->plaintext = malloc(n);
        memcpy(wire->plaintext, p, n);
        wire->plaintext_len = n;
        CHECK(frankly_outgoing_attachment_count(out) == (attachment ? 1u : 0u));
        if (attachment) {
            CHECK(frankly_outgoing_attachment(out, 0, &p, &n) == FRANKLY_OK);
            CHECK(n > attachment->len); /* a ciphertext, with its tag */
            wire->attachment = malloc(n);
            memcpy(wire->attachment, p, n);
            wire->attachment_len = n;
            wire->has_attachment = 1;
        }
        CHECK(frankly_outgoing_attachment(out, 1, &p, &n) == FRANKLY_INVALID_ARGUMENT);
        if (seq) {
            FranklyDelivered own = deliver(seq, wire->commitment, &from->member, &from->member);
            CHECK(frankly_device_confirm_sent(from->device, out, &own) == FRANKLY_OK);
        }
    } else {
        const uint8_t *p;
        size_t n;
        uint8_t c[32];
        CHECK(frankly_outgoing_franked(out, &p, &n, c) == FRANKLY_REFUSED);
        CHECK(error_has("blocked"));
        CHECK(frankly_outgoing_attachment_count(out) == 0);
    }
    frankly_outgoing_free(out);
    return franked;
}

/* Delivers `wire` as message `seq` to `to` and opens it; returns the
 * status of accept_incoming, and checks the text when accepted. */
static FranklyStatus receive(Phone *to, const Member *from, uint64_t seq, const Wire *committed, const Wire *carried,
                             const char *expect_text) {
    FranklyDelivered copy = deliver(seq, committed->commitment, from, &to->member);
    CHECK(frankly_device_check_delivered(to->device, &copy) == FRANKLY_OK);
    FranklyBytes att = {carried->attachment, carried->attachment_len};
    FranklyParty peer = {from->user, from->device};
    FranklyFacts facts = {FRANKLY_YES, FRANKLY_UNKNOWN};
    FranklyIncoming *in = NULL;
    FranklyStatus status =
        frankly_device_accept_incoming(to->device, to->scanner, &copy, carried->plaintext, carried->plaintext_len,
                                       carried->has_attachment ? &att : NULL, carried->has_attachment ? 1 : 0, &peer,
                                       &facts, &in);
    if (status == FRANKLY_OK) {
        const uint8_t *text, *verdict;
        size_t text_len, verdict_len;
        CHECK(frankly_incoming_message(in, &text, &text_len, &verdict, &verdict_len) == FRANKLY_OK);
        CHECK(text_len == strlen(expect_text) && memcmp(text, expect_text, text_len) == 0);
        CHECK(has(verdict, verdict_len, "\"actions\""));
        CHECK(frankly_incoming_attachment_count(in) == (carried->has_attachment ? 1u : 0u));
        if (carried->has_attachment) {
            const uint8_t *data;
            size_t len;
            const char *media_type;
            CHECK(frankly_incoming_attachment(in, 0, &data, &len, &media_type) == FRANKLY_OK);
            CHECK(len == 14 && memcmp(data, "meet me at six", 14) == 0);
            CHECK(strcmp(media_type, "text/plain") == 0);
        }
        frankly_incoming_free(in);
    } else {
        CHECK(in == NULL);
    }
    return status;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR NOW_MS\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    now_ms = strtoull(argv[2], NULL, 10);
    snprintf(models, sizeof models, "%s/models", dir);
    size_t len, photo_len, policy_v1_len;
    policy_v2 = slurp("policy-v2.bundle", &policy_v2_len);
    unsigned char *policy_v1 = slurp("policy-v1.bundle", &policy_v1_len);
    unsigned char *bank = slurp("bank.bundle", &len);
    bank_bundle = (FranklyBytes){bank, len};
    unsigned char *photo = slurp("banked.jpg", &photo_len);
    key_file("platform.pub", platform_pub);
    key_file("tag.key", tag_key);
    uint8_t report_pub[32];
    key_file("report.pub", report_pub);

    Phone alice = {.member = {"alice", "phone", {0}}}, bob = {.member = {"bob", "laptop", {0}}};
    memset(alice.member.key, 0xa1, 32);
    memset(bob.member.key, 0xb0, 32);
    CHECK(frankly_device_new("alice", "phone", 10, alice.member.key, &alice.device) == FRANKLY_OK);
    CHECK(frankly_device_new("bob", "laptop", 10, bob.member.key, &bob.device) == FRANKLY_OK);
    CHECK(frankly_device_new("bob", "laptop", 0, bob.member.key, &(FranklyDevice *){NULL}) == FRANKLY_REFUSED);
    open_scanner(&alice);
    open_scanner(&bob);

    /* A policy older than the one this device loaded is refused. */
    FranklyScanner *old = NULL;
    CHECK(frankly_scanner_new_signed(bob.device, policy_v1, policy_v1_len, NULL, 0, platform_pub, now_ms / 1000,
                                     "adult", models, NULL, 0, &old) == FRANKLY_REFUSED);
    CHECK(error_has("rollback") || error_has("older"));
    CHECK(old == NULL);
    /* A bundle signed by another key is refused. */
    uint8_t other_key[32];
    memcpy(other_key, platform_pub, 32);
    other_key[0] ^= 1;
    CHECK(frankly_scanner_new_signed(bob.device, policy_v2, policy_v2_len, NULL, 0, other_key, now_ms / 1000, "adult",
                                     models, NULL, 0, &old) != FRANKLY_OK);
    /* A setting the policy does not declare is refused. */
    FranklySetting unknown = {"no_such_setting", true};
    CHECK(frankly_scanner_new_signed(bob.device, policy_v2, policy_v2_len, NULL, 0, platform_pub, now_ms / 1000,
                                     "adult", models, &unknown, 1, &old) == FRANKLY_REFUSED);
    CHECK(error_has("no setting \"no_such_setting\""));
    CHECK(old == NULL);

    /* 1, 2, 3: an honest conversation, both sides, one with an attachment. */
    Wire m1 = {0}, m2 = {0}, m3 = {0};
    CHECK(frank(&alice, "a-1", "hi bob", NULL, 1, &m1, "\"allow\""));
    CHECK(receive(&bob, &alice.member, 1, &m1, &m1, "hi bob") == FRANKLY_OK);
    CHECK(frank(&bob, "b-1", "leave me alone", NULL, 2, &m2, NULL));
    CHECK(receive(&alice, &bob.member, 2, &m2, &m2, "leave me alone") == FRANKLY_OK);
    FranklyAttachment note = {(const uint8_t *)"meet me at six", 14, "text/plain"};
    CHECK(frank(&alice, "a-2", "you will regret it", &note, 3, &m3, NULL));
    CHECK(receive(&bob, &alice.member, 3, &m3, &m3, "you will regret it") == FRANKLY_OK);

    /* A banked photo: blocked before franking; nothing is sent. */
    FranklyAttachment banked = {photo, photo_len, "application/pdf"};
    Wire blocked = {0};
    CHECK(!frank(&alice, "a-3", "", &banked, 0, &blocked, "block_send"));

    /* 4: Alice's client commits to one message and encrypts another. */
    Wire committed = {0}, carried = {0};
    CHECK(frank(&alice, "a-4", "what was committed", NULL, 0, &committed, NULL));
    CHECK(frank(&alice, "a-5", "what was encrypted", NULL, 0, &carried, NULL));
    CHECK(receive(&bob, &alice.member, 4, &committed, &carried, "") == FRANKLY_REFUSED);
    CHECK(error_has("commitment"));

    /* 5: a copy altered on the way (its delivery MAC fails) changes nothing. */
    Wire m5 = {0};
    CHECK(frank(&alice, "a-6", "see you", NULL, 0, &m5, NULL));
    FranklyDelivered altered = deliver(5, m5.commitment, &alice.member, &bob.member);
    altered.timestamp_ms += 1;
    CHECK(frankly_device_check_delivered(bob.device, &altered) == FRANKLY_REFUSED);
    CHECK(error_has("delivery MAC"));
    CHECK(frankly_device_refuse(bob.device, &altered, true) == FRANKLY_REFUSED);
    /* A replay of message 3 is refused before decryption. */
    FranklyDelivered replay = deliver(3, m3.commitment, &alice.member, &bob.member);
    CHECK(frankly_device_check_delivered(bob.device, &replay) == FRANKLY_REFUSED);
    /* 5 delivered intact, but the E2EE layer cannot decrypt it: refused and kept unopened. */
    FranklyDelivered undecryptable = deliver(5, m5.commitment, &alice.member, &bob.member);
    CHECK(frankly_device_refuse(bob.device, &undecryptable, true) == FRANKLY_OK);

    /* Bob's phone restarts: the state is saved and reopened (a wrong key is refused). */
    uint8_t pickle_key[32];
    memset(pickle_key, 0x5a, 32);
    FranklyBuffer pickle = {NULL, 0};
    CHECK(frankly_device_save(bob.device, pickle_key, &pickle) == FRANKLY_OK);
    CHECK(pickle.len > 0);
    frankly_scanner_free(bob.scanner);
    frankly_device_free(bob.device);
    bob.device = NULL;
    uint8_t wrong[32];
    memset(wrong, 0x5b, 32);
    FranklyDevice *nothing = NULL;
    CHECK(frankly_device_load(pickle.data, pickle.len, wrong, bob.member.key, &nothing) == FRANKLY_REFUSED);
    CHECK(error_has("wrong key"));
    CHECK(frankly_device_load(pickle.data, pickle.len, pickle_key, bob.member.key, &bob.device) == FRANKLY_OK);
    frankly_buffer_free(pickle);
    open_scanner(&bob); /* the same bundle version again: allowed */

    /* Bob reports message 3 with two before it and one after (the refused 4). */
    FranklyBuffer envelope = {NULL, 0};
    CHECK(frankly_device_report(bob.device, "alice-bob", committed.commitment, 0, 0, "harassment", NULL, false, 1,
                                report_pub, &envelope) == FRANKLY_REFUSED);
    CHECK(error_has("refused on this device"));
    CHECK(frankly_device_report(bob.device, "alice-bob", m3.commitment, 2, 1, "no-such-reason", NULL, false, 1,
                                report_pub, &envelope) == FRANKLY_INVALID_ARGUMENT);
    CHECK(frankly_device_report(bob.device, "alice-bob", m3.commitment, 2, 1, "harassment", "threats", true, 1,
                                report_pub, &envelope) == FRANKLY_OK);
    char out[4096];
    snprintf(out, sizeof out, "%s/report.bin", dir);
    FILE *f = fopen(out, "wb");
    CHECK(f && fwrite(envelope.data, 1, envelope.len, f) == envelope.len);
    if (f) fclose(f);
    frankly_buffer_free(envelope);

    /* NULLs are refused with a message, never a crash. */
    CHECK(frankly_device_check_delivered(NULL, &replay) == FRANKLY_INVALID_ARGUMENT);
    CHECK(error_has("device is NULL"));
    CHECK(frankly_device_accept_incoming(bob.device, bob.scanner, NULL, NULL, 0, NULL, 0, NULL, NULL, NULL) ==
          FRANKLY_INVALID_ARGUMENT);
    frankly_outgoing_free(NULL);
    frankly_incoming_free(NULL);
    frankly_device_free(NULL);

    wire_free(&m1);
    wire_free(&m2);
    wire_free(&m3);
    wire_free(&blocked);
    wire_free(&committed);
    wire_free(&carried);
    wire_free(&m5);
    frankly_scanner_free(alice.scanner);
    frankly_scanner_free(bob.scanner);
    frankly_device_free(alice.device);
    frankly_device_free(bob.device);
    free(policy_v2);
    free(policy_v1);
    free(bank);
    free(photo);
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
