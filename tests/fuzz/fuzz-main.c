/* SPDX-License-Identifier: Apache-2.0 */
/* Replays inputs through a fuzz target without libFuzzer: every file named
 * on the command line, and every regular file in a directory named there.
 * This is how the committed corpora run under gcc in `meson test`. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path) {
        FILE *f = fopen(path, "re");
        uint8_t *buf = NULL;
        size_t size = 0, allocated = 0;

        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        for (;;) {
                size_t n;

                if (allocated - size < 4096) {
                        uint8_t *b = realloc(buf, allocated + 65536);
                        if (!b) {
                                fclose(f);
                                free(buf);
                                return -1;
                        }
                        buf = b;
                        allocated += 65536;
                }
                n = fread(buf + size, 1, allocated - size, f);
                size += n;
                if (n == 0)
                        break;
        }
        fclose(f);
        (void) LLVMFuzzerTestOneInput(buf, size);
        free(buf);
        return 0;
}

static int cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int run_dir(const char *path, unsigned *count) {
        DIR *d = opendir(path);
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;
        int r = 0;

        if (!d) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        while ((de = readdir(d))) {
                char **nn;

                if (de->d_name[0] == '.')
                        continue;
                nn = realloc(names, (n + 1) * sizeof *names);
                if (!nn || asprintf(&nn[n], "%s/%s", path, de->d_name) < 0) {
                        names = nn ?: names;
                        r = -1;
                        break;
                }
                names = nn;
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp);
        for (size_t i = 0; i < n; i++) {
                if (r >= 0 && run_file(names[i]) < 0)
                        r = -1;
                else if (r >= 0)
                        (*count)++;
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        unsigned count = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        return 1;
                }
                if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) < 0 : run_file(argv[i]) < 0)
                        return 1;
                if (!S_ISDIR(st.st_mode))
                        count++;
        }
        printf("%u inputs ran clean\n", count);
        return 0;
}
