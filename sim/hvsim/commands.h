/* commands — the `hvsim <area>` entry points, one per cmd_<area>.c. Each returns the exit code. */
#ifndef HVSIM_COMMANDS_H
#define HVSIM_COMMANDS_H
int cmd_vhdx(int argc, char **argv);
#endif
