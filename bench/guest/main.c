/* Links the Lua library built by the build benchmark into a program and
 * runs a line of Lua, so that the build ends with a real link and a check
 * that the result works. */
#include <stdio.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

int main(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_dostring(L, "local s = 0 for i = 1, 100 do s = s + i end "
                         "assert(s == 5050) print('lua ok')")) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_close(L);
    return 0;
}
