/* What the C tests share: the headers, and CHECK, which counts a failed
 * condition with frankly's last error message and goes on. */
#ifndef FRANKLY_TEST_CHECK_H
#define FRANKLY_TEST_CHECK_H

#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frankly.h"

static int failures = 0;

#define CHECK(cond)                                                                                   \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    frankly_last_error());                                                            \
            failures++;                                                                               \
        }                                                                                             \
    } while (0)

#endif
