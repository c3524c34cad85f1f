/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The apiserver stand-in: records minion registrations (POST
 * /api/v1beta1/minions) in $KUBE_STANDIN_DIR/minions.jsonl, one JSON object a
 * line, answers 201 for a new id and 409 for one already recorded, and serves
 * the list back on GET. Runs until SIGTERM/SIGINT. */

int apiserver_run(const char *address, unsigned port, const char *state_dir);
