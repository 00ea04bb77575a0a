#include "raw_bench.h"
int raw_placeholder(void){return 0;}
