#include <criterion/criterion.h>
Test(durability, placeholder) { cr_assert(1); }
