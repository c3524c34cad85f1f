/* SPDX-License-Identifier: Apache-2.0 */
/* The config loader on whole files: the input is agent.conf, then drop-ins
 * after each line "--- drop-in ---", written into a private temporary
 * directory as agent.conf.d/NN.conf. The environment is empty. A config
 * that loads must dump without trouble. */
#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

#define SEPARATOR "\n--- drop-in ---\n"
#define MAX_DROPINS 4

static char dir[] = "/tmp/fuzz-config.XXXXXX";
static char main_path[64], dropin_dir[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *f) {
        (void) st; (void) flag; (void) f;
        return remove(path);
}

static void cleanup(void) {
        (void) nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void discard(int level, const char *msg, void *userdata) {
        (void) level; (void) msg; (void) userdata;
}

static void write_all(const char *path, const uint8_t *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        fuzz_check(fd >= 0);
        fuzz_check(write(fd, data, size) == (ssize_t) size);
        close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char *const no_env[] = { NULL };
        const ConfigLoadOptions opts = { .path = main_path, .environ = no_env, .diag = discard };
        AgentConfig *c = NULL;
        FILE *null;
        unsigned n = 0;

        if (!main_path[0]) {
                fuzz_check(mkdtemp(dir));
                atexit(cleanup);
                snprintf(main_path, sizeof main_path, "%s/agent.conf", dir);
                snprintf(dropin_dir, sizeof dropin_dir, "%s/agent.conf.d", dir);
                fuzz_check(mkdir(dropin_dir, 0755) == 0);
        }
        for (unsigned i = 0; i < MAX_DROPINS; i++) {
                char p[96];
                snprintf(p, sizeof p, "%s/%02u.conf", dropin_dir, i);
                (void) unlink(p);
        }

        for (size_t off = 0; off <= size && n <= MAX_DROPINS; n++) {
                const uint8_t *sep = memmem(data + off, size - off, SEPARATOR, strlen(SEPARATOR));
                size_t len = sep ? (size_t) (sep - (data + off)) + 1 : size - off;
                char p[96];

                if (n == 0)
                        snprintf(p, sizeof p, "%s", main_path);
                else
                        snprintf(p, sizeof p, "%s/%02u.conf", dropin_dir, n - 1);
                write_all(p, data + off, len);
                if (!sep)
                        break;
                off += len + strlen(SEPARATOR) - 1;
        }

        if (config_load(&opts, &c) >= 0) {
                fuzz_check(c->node.role == ROLE_MASTER || c->node.role == ROLE_MINION);
                fuzz_check(c->etcd.endpoints && c->etcd.endpoints[0]);
                fuzz_check(c->network.subnet_len > c->network.network.prefixlen);
                null = fopen("/dev/null", "we");
                if (null) {
                        config_dump(c, null);
                        fclose(null);
                }
                config_free(c);
        }
        return 0;
}
