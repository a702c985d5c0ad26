#include <criterion/criterion.h>
Test(omnictl, placeholder) { cr_assert(1); }
