#include <criterion/criterion.h>
Test(schema, placeholder) { cr_assert(1); }
