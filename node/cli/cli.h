/*
 * liaison: the operator's command-line client of the node daemon (liaison-node). Talks to the
 * daemon over its control socket (lib/control.h, proto/liaison/v1/control.proto); builds
 * payloads (proto/liaison/v1/payload.proto) from options; prints replies as text or JSON.
 */
#ifndef LIA_CLI_H
#define LIA_CLI_H

/* Runs the command line; returns a sysexits(3) status. */
int cli_main(int argc, char **argv);

#endif
