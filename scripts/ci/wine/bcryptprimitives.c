/* bcryptprimitives.dll for Wine 8 (Debian 12), test infrastructure only.
 *
 * Go 1.24 and later take random bytes on Windows from ProcessPrng in
 * bcryptprimitives.dll, which Wine 8.0 does not have, so a Go program for
 * Windows stops at start under it ("bcryptprimitives.dll not found"). This
 * DLL exports ProcessPrng on top of RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. scripts/ci/ensure-wine.sh builds it
 * with mingw-w64 into the Wine prefix the Windows tests run in. It never
 * ships with apimdev. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
	while (length > 0) {
		ULONG n = length > 0x40000000 ? 0x40000000 : (ULONG)length;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		length -= n;
	}
	return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
	(void)instance;
	(void)reason;
	(void)reserved;
	return TRUE;
}
