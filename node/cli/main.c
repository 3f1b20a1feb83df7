/* liaison: operator command-line client of the node daemon (all logic in cli.c). */
#include "cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
