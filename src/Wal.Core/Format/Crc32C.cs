using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Wal.Format;

/// <summary>
/// CRC-32C (Castagnoli) with Go's hash/crc32 conventions: <see cref="Update"/> continues a
/// finished checksum, so the chain can be carried from record to record and segment to segment.
/// </summary>
/// <remarks>
/// <para>
/// The CRC instruction takes three cycles to give its result and can start one a cycle, so one
/// chain of it runs at a third of the speed the core allows. Inputs of 96 bytes or more are
/// therefore cut into stripes of three equal lanes, each lane a chain of its own, and the lanes
/// joined by the CRC's linearity: the register after lanes A, B, C is
/// shift(2L, crc(A)) xor shift(L, crc(B)) xor crc(C), where shift(n, x) runs x over n zero
/// bytes, which is linear in x and so four table lookups. Measured in bench/crc.fsx.
/// </para>
/// <para>
/// System.IO.Hashing's Crc32 with <c>Crc32ParameterSet.Crc32C</c> was measured against the
/// single chain (bench/crc.fsx): slower on 100-byte records, faster on 4 KiB ones, and it cannot
/// continue a finished checksum without a parameter set per call (about 1 KiB allocated and tens
/// of microseconds each), which Go's crc32.Update semantics need. So the hardware loop stays.
/// </para>
/// <para>
/// From <see cref="FoldBytes"/> on, where the machine has VPCLMULQDQ, whole 64-byte blocks are
/// folded by carry-less multiplication instead (<see cref="Crc32CFold"/>): 47 GB/s on 4 KiB
/// against the three lanes' 26, and level with them at 256 bytes.
/// </para>
/// </remarks>
internal static class Crc32C
{
    // Lane lengths: long stripes (768 bytes) for the bulk of large records, short ones (96 bytes)
    // for small records and the rest. Each is a multiple of 8, the instruction's width.
    private const int LongLane = 256;
    private const int ShortLane = 32;

    // From this length on, whole 64-byte blocks are folded by carry-less multiplication where
    // the machine can (Crc32CFold), and only the rest goes through the CRC instruction.
    internal const int FoldBytes = 256;

    // shift(n, x) for the lane lengths and twice them, as four 256-entry tables (one per byte of x).
    private static readonly uint[] LongOnce = ShiftTable(LongLane);
    private static readonly uint[] LongTwice = ShiftTable(2 * LongLane);
    private static readonly uint[] ShortOnce = ShiftTable(ShortLane);
    private static readonly uint[] ShortTwice = ShiftTable(2 * ShortLane);

    /// <summary>Extends <paramref name="crc"/> (a finished checksum, 0 for none) with <paramref name="data"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        // BitOperations.Crc32C is the bare CRC step (the SSE4.2 / ARMv8 instruction);
        // Go inverts before and after, and so do we, so chained values equal etcd's.
        uint c = ~crc;
        ref byte p = ref MemoryMarshal.GetReference(data);
        int left = data.Length;
        if (left >= FoldBytes && Crc32CFold.IsSupported)
        {
            int blocks = left / 64;
            c = Crc32CFold.Update(c, ref p, blocks);
            p = ref Unsafe.Add(ref p, blocks * 64);
            left -= blocks * 64;
        }
        while (left >= 3 * LongLane)
        {
            c = Stripe(c, ref p, LongLane, LongOnce, LongTwice);
            p = ref Unsafe.Add(ref p, 3 * LongLane);
            left -= 3 * LongLane;
        }
        while (left >= 3 * ShortLane)
        {
            c = Stripe(c, ref p, ShortLane, ShortOnce, ShortTwice);
            p = ref Unsafe.Add(ref p, 3 * ShortLane);
            left -= 3 * ShortLane;
        }
        while (left >= 8)
        {
            c = BitOperations.Crc32C(c, Read64(ref p));
            p = ref Unsafe.Add(ref p, 8);
            left -= 8;
        }
        if (left >= 4)
        {
            c = BitOperations.Crc32C(c, Read32(ref p));
            p = ref Unsafe.Add(ref p, 4);
            left -= 4;
        }
        for (int i = 0; i < left; i++)
            c = BitOperations.Crc32C(c, Unsafe.Add(ref p, i));
        return ~c;
    }

    /// <summary>
    /// <see cref="Update"/> over <paramref name="source"/>, copying it to the start of
    /// <paramref name="destination"/> in the same pass where the blocks are folded.
    /// </summary>
    public static uint UpdateAndCopy(uint crc, ReadOnlySpan<byte> source, Span<byte> destination)
    {
        int folded = 0;
        if (source.Length >= FoldBytes && Crc32CFold.IsSupported)
        {
            // Checked here, as the fold writes through a reference.
            if (destination.Length < source.Length)
                throw new ArgumentException("The destination is shorter than the source.", nameof(destination));
            int blocks = source.Length / 64;
            crc = ~Crc32CFold.UpdateAndCopy(~crc, ref MemoryMarshal.GetReference(source), ref MemoryMarshal.GetReference(destination), blocks);
            folded = blocks * 64;
        }
        source[folded..].CopyTo(destination[folded..]);
        return Update(crc, source[folded..]);
    }

    /// <summary>The register after three lanes of <paramref name="lane"/> bytes from <paramref name="p"/>, from <paramref name="c"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Stripe(uint c, ref byte p, int lane, uint[] once, uint[] twice)
    {
        uint b = 0, d = 0;
        for (int i = 0; i < lane; i += 8)
        {
            c = BitOperations.Crc32C(c, Read64(ref Unsafe.Add(ref p, i)));
            b = BitOperations.Crc32C(b, Read64(ref Unsafe.Add(ref p, lane + i)));
            d = BitOperations.Crc32C(d, Read64(ref Unsafe.Add(ref p, 2 * lane + i)));
        }
        return Shift(twice, c) ^ Shift(once, b) ^ d;
    }

    /// <summary>shift(n, x) from its table: the register <paramref name="x"/> run over n zero bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Shift(uint[] table, uint x)
    {
        ref uint t = ref MemoryMarshal.GetArrayDataReference(table);
        return Unsafe.Add(ref t, (int)(x & 0xFF))
            ^ Unsafe.Add(ref t, 256 + (int)((x >> 8) & 0xFF))
            ^ Unsafe.Add(ref t, 512 + (int)((x >> 16) & 0xFF))
            ^ Unsafe.Add(ref t, 768 + (int)(x >> 24));
    }

    /// <summary>The table of shift(<paramref name="bytes"/>, x): entry 256k + v is x = v &lt;&lt; 8k run over the zeros.</summary>
    private static uint[] ShiftTable(int bytes)
    {
        var table = new uint[4 * 256];
        for (int k = 0; k < 4; k++)
        {
            for (uint v = 0; v < 256; v++)
            {
                uint x = v << (8 * k);
                for (int i = 0; i < bytes; i += 8)
                    x = BitOperations.Crc32C(x, 0UL);
                table[256 * k + v] = x;
            }
        }
        return table;
    }

    /// <summary>Four bytes as the CRC takes them: the first byte lowest.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Read32(ref byte p)
    {
        uint v = Unsafe.ReadUnaligned<uint>(ref p);
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    /// <summary>Eight bytes as the CRC takes them: the first byte lowest.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Read64(ref byte p)
    {
        ulong v = Unsafe.ReadUnaligned<ulong>(ref p);
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }
}
