/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The table of sections and keys, shared by the loader and the printout. */

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef enum ConfigType {
        T_ROLE,
        T_HOSTNAME,
        T_IFNAME,
        T_HOST_CIDR,            /* OptionalCidr: an address with its prefix, not the network or broadcast */
        T_NET_CIDR,             /* Cidr: host bits zero */
        T_URL_LIST,             /* char **, comma separated */
        T_URL,                  /* char * */
        T_URL_TEMPLATE,         /* char *, with ${MASTER_IP} ${NODE_IP} ${NODE_NAME} */
        T_TEXT,                 /* char *, with the same placeholders */
        T_KEY_PREFIX,           /* char * */
        T_PATH,                 /* char *, absolute */
        T_STRING,               /* char *, printable */
        T_DURATION,             /* usec_t, min/max in usec */
        T_UINT,                 /* uint32_t, min/max */
        T_MTU,                  /* uint32_t, "auto" = 0 */
        T_BOOL,                 /* bool */
        T_UNIT,                 /* char * */
        T_UNIT_LIST,            /* char **, whitespace separated */
        T_NAME_LIST,            /* char **, artifact names */
        T_SHA256,               /* Sha256 */
        T_MODE,                 /* mode_t */
        T_RUNTIME,              /* RuntimeKind */
} ConfigType;

typedef struct ConfigKeyDef {
        const char *name;
        ConfigType type;
        size_t offset;
        const char *def;        /* NULL: unset unless given */
        uint64_t min, max;
        bool required;
} ConfigKeyDef;

typedef struct ConfigSectionDef {
        const char *name;       /* "artifact." is a prefix: [artifact.NAME] */
        const ConfigKeyDef *keys;
        size_t n_keys;
        size_t offset;          /* of the section's struct in ck_config (not for artifacts) */
        size_t origin_offset;   /* of the origin[] array in the section's struct */
        const char *alias_of;   /* a deprecated name whose keys are the first n_keys of this section */
} ConfigSectionDef;

extern const ConfigSectionDef ck_sections[];
extern const size_t ck_n_sections;
extern const ConfigSectionDef ck_artifact_section;

void *config_section_base(const AgentConfig *c, const ConfigSectionDef *s);
ConfigOrigin *config_section_origins(void *base, const ConfigSectionDef *s);

/* "role.master" + "subnet-len" -> "COREKUBE_ROLE_MASTER_SUBNET_LEN" */
char *config_env_name(const char *section, const char *key);
/* "default", "FILE:LINE", "env COREKUBE_X" into buf. */
const char *origin_to_string(const ConfigOrigin *o, char *buf, size_t len);
void config_value_free(ConfigType t, void *p);
size_t config_value_size(ConfigType t);
/* Parses value into p (a scratch of config_value_size(k->type)); on error a reason in err. */
int config_value_parse(const ConfigKeyDef *k, const char *value, void *p, char *err);
int config_check_artifact_name(const char *s, char *err);
/* The value as it would be written in the file; "" when unset. */
char *config_value_format(ConfigType t, const void *p);
