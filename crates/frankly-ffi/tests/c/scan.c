/* frankly's C ABI from C: PDQ, refusals, a bank and a scan, every handle
 * and buffer released. Run by tests/c_program.rs under ASan/LSan/UBSan:
 *   scan PHOTO EXPECTED_PDQ_HEX EXPECTED_QUALITY POLICY_TOML MODELS_DIR */
#include "check.h"

/* The whole file, NUL-terminated (so a text file is a C string). */
static unsigned char *slurp(const char *path, size_t *len) {
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

static int contains(const FranklyBuffer *b, const char *needle) {
    return b->data && memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PHOTO PDQ_HEX QUALITY POLICY MODELS_DIR\n", argv[0]);
        return 2;
    }
    size_t photo_len, policy_len;
    unsigned char *photo = slurp(argv[1], &photo_len);
    unsigned char *policy = slurp(argv[4], &policy_len);

    /* PDQ: the Rust library's hash and quality. */
    char hex[65];
    uint8_t quality = 255;
    CHECK(frankly_pdq(photo, photo_len, hex, &quality) == FRANKLY_OK);
    CHECK(strcmp(hex, argv[2]) == 0);
    CHECK(quality == (uint8_t)atoi(argv[3]));
    CHECK(strcmp(frankly_last_error(), "") == 0);

    /* Refusals, each with the library's message. */
    CHECK(frankly_pdq((const uint8_t *)"not an image", 12, hex, &quality) == FRANKLY_REFUSED);
    CHECK(strstr(frankly_last_error(), "not a supported image") != NULL);
    CHECK(frankly_pdq(photo, photo_len / 2, hex, &quality) == FRANKLY_REFUSED);
    CHECK(frankly_pdq(NULL, 10, hex, &quality) == FRANKLY_INVALID_ARGUMENT);
    CHECK(strstr(frankly_last_error(), "NULL") != NULL);
    CHECK(frankly_pdq(photo, photo_len, NULL, &quality) == FRANKLY_INVALID_ARGUMENT);

    /* A bank with the photo's hash; a bad hash is refused and nothing is returned. */
    const char *hashes[] = {hex};
    FranklyBank *bank = NULL;
    CHECK(frankly_bank_new("known-abuse", "pdq", hashes, 1, &bank) == FRANKLY_OK && bank != NULL);
    const char *bad_hashes[] = {"zz"};
    FranklyBank *bad_bank = NULL;
    CHECK(frankly_bank_new("bad", "pdq", bad_hashes, 1, &bad_bank) == FRANKLY_REFUSED && bad_bank == NULL);
    CHECK(strstr(frankly_last_error(), "hex") != NULL);
    CHECK(frankly_bank_new("bad", "no-such-signal", hashes, 1, &bad_bank) == FRANKLY_INVALID_ARGUMENT);

    /* The scanner: child policy, the bank (released right after: the scanner keeps a copy), the models. */
    FranklyScanner *scanner = NULL;
    const FranklyBank *banks[] = {bank};
    CHECK(frankly_scanner_new_local((const char *)policy, NULL, banks, 1, argv[5], NULL, 0, &scanner) == FRANKLY_OK);
    frankly_bank_free(bank);
    if (scanner == NULL) {
        fprintf(stderr, "no scanner: %s\n", frankly_last_error());
        return 1;
    }

    /* Sending the banked photo is blocked, whatever it is labelled. */
    FranklyAttachment attachment = {photo, photo_len, "application/pdf"};
    FranklyBuffer verdict = {NULL, 0};
    CHECK(frankly_scanner_scan(scanner, true, NULL, &attachment, 1, &verdict) == FRANKLY_OK);
    CHECK(contains(&verdict, "\"block_send\""));
    CHECK(contains(&verdict, "\"known-abuse\""));
    frankly_buffer_free(verdict);

    /* A damaged attachment is scanned as unscannable (blurred), not skipped. */
    FranklyAttachment junk = {(const uint8_t *)"\xff\xd8\xff junk", 7, "image/jpeg"};
    FranklyBuffer second = {NULL, 0};
    CHECK(frankly_scanner_scan(scanner, false, "hello", &junk, 1, &second) == FRANKLY_OK);
    CHECK(contains(&second, "\"blur\""));
    CHECK(contains(&second, "unscannable"));
    frankly_buffer_free(second);

    /* Bad arguments and a bad policy. */
    FranklyBuffer unused = {NULL, 0};
    CHECK(frankly_scanner_scan(NULL, false, "x", NULL, 0, &unused) == FRANKLY_INVALID_ARGUMENT);
    CHECK(frankly_scanner_scan(scanner, false, "x", NULL, 3, &unused) == FRANKLY_INVALID_ARGUMENT);
    FranklyScanner *bad = NULL;
    CHECK(frankly_scanner_new_local("this is not a policy", NULL, NULL, 0, NULL, NULL, 0, &bad) == FRANKLY_REFUSED);
    CHECK(bad == NULL);
    CHECK(strlen(frankly_last_error()) > 0);

    frankly_scanner_free(scanner);
    frankly_scanner_free(NULL);
    frankly_bank_free(NULL);
    frankly_buffer_free(unused);
    free(photo);
    free(policy);
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
