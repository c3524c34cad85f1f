/* SPDX-License-Identifier: Apache-2.0 */
/* [runtime], its deprecated alias [docker], and [cni]: the defaults that
 * depend on kind, the aliases (the later line wins), the refusals. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "config-test.h"
#include "macro.h"

static void test_runtime_defaults(void **state) {
        ctx *x = *state;

        expect_ok(x, BASE, NULL);
        assert_int_equal(x->c->runtime.kind, RUNTIME_DOCKER);
        assert_string_equal(x->c->runtime.unit, "docker.service");
        assert_origin(x, "runtime", "unit", "default");
        assert_true(x->c->runtime.restart);
        assert_null(x->c->cni.conf_file);
        assert_origin(x, "cni", "conf-file", "unset");

        /* containerd: its unit and the CNI file by default. */
        expect_ok(x, BASE "[runtime]\nkind = containerd\n", NULL);
        assert_int_equal(x->c->runtime.kind, RUNTIME_CONTAINERD);
        assert_string_equal(x->c->runtime.unit, "containerd.service");
        assert_origin(x, "runtime", "unit", "default");
        assert_string_equal(x->c->cni.conf_file, "/etc/cni/net.d/10-corekube.conflist");
        assert_origin(x, "cni", "conf-file", "default");

        /* Given ones are kept; "unit =" is the default of the kind again. */
        expect_ok(x, BASE "[runtime]\nkind = containerd\nunit = cri.service\n[cni]\nconf-file = /etc/cni/x.conflist\n",
                  NULL);
        assert_string_equal(x->c->runtime.unit, "cri.service");
        assert_string_equal(x->c->cni.conf_file, "/etc/cni/x.conflist");
        expect_ok(x, BASE "[runtime]\nunit = cri.service\nkind = containerd\nunit =\n", NULL);
        assert_string_equal(x->c->runtime.unit, "containerd.service");

        char *const env[] = { "COREKUBE_RUNTIME_KIND=containerd", NULL };
        expect_ok(x, BASE, env);
        assert_int_equal(x->c->runtime.kind, RUNTIME_CONTAINERD);
        assert_origin(x, "runtime", "kind", "env COREKUBE_RUNTIME_KIND");
}

static void test_docker_alias(void **state) {
        ctx *x = *state;

        /* The later line wins, whichever section it is in. */
        assert_int_equal(load_text(x, BASE "[runtime]\nunit = a.service\n[docker]\nunit = b.service\nrestart = no\n", NULL), 0);
        expect_diags(x, "warning: agent.conf:8: [docker] is deprecated: its keys are [runtime]'s, write them there");
        assert_string_equal(x->c->runtime.unit, "b.service");
        assert_origin(x, "runtime", "unit", "agent.conf:9");
        assert_false(x->c->runtime.restart);
        assert_origin(x, "runtime", "restart", "agent.conf:10");

        assert_int_equal(load_text(x, BASE "[docker]\nunit = b.service\n[runtime]\nunit = a.service\n", NULL), 0);
        assert_int_equal(x->n_diags, 1);
        assert_string_equal(x->c->runtime.unit, "a.service");

        /* kind is never implied by [docker]: a containerd node keeps its kind,
         * and kind is not a key of [docker]. */
        assert_int_equal(load_text(x, BASE "[runtime]\nkind = containerd\n[docker]\nunit = d.service\n", NULL), 0);
        assert_int_equal(x->c->runtime.kind, RUNTIME_CONTAINERD);
        assert_string_equal(x->c->runtime.unit, "d.service");
        assert_int_equal(load_text(x, BASE "[docker]\nkind = containerd\n", NULL), -EINVAL);
        expect_diags(x, "warning: agent.conf:6: [docker] is deprecated: its keys are [runtime]'s, write them there",
                     "agent.conf:7: unknown key \"kind\" in [docker] (it belongs in [runtime])");

        /* The environment's old names too. */
        char *const env[] = { "COREKUBE_DOCKER_UNIT=e.service", NULL };
        assert_int_equal(load_text(x, BASE, env), 0);
        expect_diags(x, "warning: env COREKUBE_DOCKER_UNIT: deprecated: use COREKUBE_RUNTIME_UNIT");
        assert_string_equal(x->c->runtime.unit, "e.service");
        assert_origin(x, "runtime", "unit", "env COREKUBE_DOCKER_UNIT");

        /* A bad value in [docker] is named as written. */
        assert_int_equal(load_text(x, BASE "[docker]\nrestart = sometimes\n", NULL), -EINVAL);
        assert_int_equal(x->n_diags, 2);
        assert_string_equal(x->diags[1], "agent.conf:7: [docker] restart: invalid boolean \"sometimes\" (use yes or no)");
}

static void test_runtime_refusals(void **state) {
        ctx *x = *state;

        expect_one_error(x, BASE "[runtime]\nkind = podman\n", NULL,
                         "agent.conf:7: [runtime] kind: unsupported runtime \"podman\" (use docker or containerd)");
        expect_one_error(x, BASE "[runtime]\nkind = Docker\n", NULL,
                         "agent.conf:7: [runtime] kind: unsupported runtime \"Docker\" (use docker or containerd)");
        /* docker0 and cni0 would both take the subnet's first address. */
        expect_one_error(x, BASE "[cni]\nconf-file = /etc/cni/net.d/10-corekube.conflist\n", NULL,
                         "agent.conf:7: [cni] conf-file is only used with [runtime] kind = containerd: with Docker, "
                         "docker0 and cni0 would both claim the subnet's first address");
        expect_one_error(x, BASE "[cni]\nconf-file = etc/x\n[runtime]\nkind = containerd\n", NULL,
                         "agent.conf:7: [cni] conf-file: invalid path \"etc/x\": must be absolute");

        /* restart means nothing with containerd: a notice, not a refusal. */
        assert_int_equal(load_text(x, BASE "[runtime]\nkind = containerd\nrestart = yes\n", NULL), 0);
        expect_diags(x, "warning: agent.conf:8: [runtime] restart is ignored with kind = containerd: it reads the "
                        "CNI file per pod, nothing is restarted");
}

static void test_runtime_dump(void **state) {
        ctx *x = *state;
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        expect_ok(x, BASE "[runtime]\nkind = containerd\n", NULL);
        f = open_memstream(&buf, &len);
        assert_non_null(f);
        config_dump(x->c, f);
        assert_int_equal(fclose(f), 0);
        /* One [runtime], no [docker]; the kind's defaults filled in. */
        assert_non_null(strstr(buf, "\n[runtime]\nunit = containerd.service "));
        assert_non_null(strstr(buf, "\nkind = containerd "));
        assert_non_null(strstr(buf, "\n[cni]\nconf-file = /etc/cni/net.d/10-corekube.conflist"));
        assert_null(strstr(buf, "[docker]"));
        free(buf);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_runtime_defaults),
                T(test_docker_alias),
                T(test_runtime_refusals),
                T(test_runtime_dump),
        };

        return cmocka_run_group_tests_name("config-runtime", tests, group_setup, group_teardown);
}
