namespace Wal; internal static class X {}
