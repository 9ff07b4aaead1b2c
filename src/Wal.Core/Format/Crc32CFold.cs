using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Wal.Format;

/// <summary>
/// The CRC-32C register over whole 64-byte blocks by carry-less multiplication (VPCLMULQDQ on
/// 512-bit vectors), for long inputs: four times the bytes a cycle of the CRC instruction's three
/// lanes, which is the limit <see cref="Crc32C"/> otherwise runs at. Measured in bench/crc.fsx.
/// </summary>
/// <remarks>
/// <para>
/// The register after a message M is M·x³² mod P, the message read as a polynomial over GF(2)
/// (reflected: a byte's low bit is its highest power). Only M mod P matters, so a 128-bit piece X
/// followed by D bits can be replaced by X·x^D mod P, folded into the piece D bits later. With
/// X = H·x⁶⁴ + L, that is H·(x^(D+64) mod P) + L·(x^D mod P): two 64 x 32-bit carry-less products
/// of under 128 bits, so folding needs no reduction until the end. On reflected operands the
/// instruction returns the product times x, so the constants are x^(D+63) and x^(D-1) mod P.
/// </para>
/// <para>
/// The register enters as an XOR over the message's first four bytes (a CRC from r over M is one
/// from zero over M with r added to its head), and the folded 128 bits leave through two steps
/// of the CRC instruction from zero, which reduce them exactly as the bytes they stand for.
/// </para>
/// </remarks>
internal static class Crc32CFold
{
    /// <summary>Whether this machine has the instructions (VPCLMULQDQ with AVX-512).</summary>
    public static bool IsSupported => Pclmulqdq.V512.IsSupported && Vector512.IsHardwareAccelerated;

    private const int BlockBytes = 64;

    // The fold constants for a distance of D bits, as [x^(D+63) mod P, x^(D-1) mod P] per 128-bit lane.
    private static readonly Vector512<ulong> Ahead2048 = Constants(2048);
    private static readonly Vector512<ulong> Ahead1536 = Constants(1536);
    private static readonly Vector512<ulong> Ahead1024 = Constants(1024);
    private static readonly Vector512<ulong> Ahead512 = Constants(512);
    private static readonly Vector128<ulong> Ahead384 = Constants(384).GetLower().GetLower();
    private static readonly Vector128<ulong> Ahead256 = Constants(256).GetLower().GetLower();
    private static readonly Vector128<ulong> Ahead128 = Constants(128).GetLower().GetLower();

    /// <summary>
    /// The raw register (no inversions) after <paramref name="blocks"/> (at least one) 64-byte
    /// blocks from <paramref name="p"/>, starting from <paramref name="register"/>.
    /// </summary>
    public static uint Update(uint register, ref byte p, int blocks) => Run(register, ref p, ref p, blocks, copy: false);

    /// <summary>
    /// <see cref="Update"/>, storing each block to <paramref name="destination"/> as it is read:
    /// a copy for little more than the stores.
    /// </summary>
    public static uint UpdateAndCopy(uint register, ref byte p, ref byte destination, int blocks) =>
        Run(register, ref p, ref destination, blocks, copy: true);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static uint Run(uint register, ref byte p, ref byte d, int blocks, bool copy)
    {
        var a0 = Take(ref p, ref d, 0, copy) ^ Vector512.CreateScalar((ulong)register);
        int done = 1;
        if (blocks >= 4)
        {
            // Four independent chains, 256 bytes a step, so that the multiplier's latency overlaps.
            Vector512<ulong> a1 = Take(ref p, ref d, 1, copy), a2 = Take(ref p, ref d, 2, copy), a3 = Take(ref p, ref d, 3, copy);
            for (done = 4; done + 4 <= blocks; done += 4)
            {
                a0 = Fold(a0, Ahead2048) ^ Take(ref p, ref d, done, copy);
                a1 = Fold(a1, Ahead2048) ^ Take(ref p, ref d, done + 1, copy);
                a2 = Fold(a2, Ahead2048) ^ Take(ref p, ref d, done + 2, copy);
                a3 = Fold(a3, Ahead2048) ^ Take(ref p, ref d, done + 3, copy);
            }
            a0 = a3 ^ Fold(a2, Ahead512) ^ Fold(a1, Ahead1024) ^ Fold(a0, Ahead1536);
        }
        for (; done < blocks; done++)
            a0 = Fold(a0, Ahead512) ^ Take(ref p, ref d, done, copy);

        // The four lanes, earliest first, onto the last.
        var x = a0.GetUpper().GetUpper()
            ^ Fold(a0.GetUpper().GetLower(), Ahead128)
            ^ Fold(a0.GetLower().GetUpper(), Ahead256)
            ^ Fold(a0.GetLower().GetLower(), Ahead384);
        return BitOperations.Crc32C(BitOperations.Crc32C(0u, x.GetElement(0)), x.GetElement(1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Take(ref byte p, ref byte d, int block, bool copy)
    {
        var v = Vector512.LoadUnsafe(ref Unsafe.Add(ref p, block * BlockBytes));
        if (copy)
            v.StoreUnsafe(ref Unsafe.Add(ref d, block * BlockBytes));
        return v.AsUInt64();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Fold(Vector512<ulong> v, Vector512<ulong> k) =>
        Pclmulqdq.V512.CarrylessMultiply(v, k, 0x00) ^ Pclmulqdq.V512.CarrylessMultiply(v, k, 0x11);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Fold(Vector128<ulong> v, Vector128<ulong> k) =>
        Pclmulqdq.CarrylessMultiply(v, k, 0x00) ^ Pclmulqdq.CarrylessMultiply(v, k, 0x11);

    private static Vector512<ulong> Constants(int bits)
    {
        ulong high = Reflect(PowerModP(bits + 63)), low = Reflect(PowerModP(bits - 1));
        return Vector512.Create(high, low, high, low, high, low, high, low);
    }

    // x^n mod P, P = x^32 + 0x1EDC6F41 (Castagnoli), in the usual order: bit i is x^i.
    private static uint PowerModP(int n)
    {
        ulong r = 1;
        for (int i = 0; i < n; i++)
        {
            r <<= 1;
            if ((r & (1UL << 32)) != 0)
                r ^= 0x1_1EDC_6F41UL;
        }
        return (uint)r;
    }

    // A polynomial of degree under 64 as a reflected 64-bit operand: bit i is x^(63-i).
    private static ulong Reflect(uint polynomial)
    {
        ulong r = 0;
        for (int i = 0; i < 32; i++)
        {
            if ((polynomial & (1u << i)) != 0)
                r |= 1UL << (63 - i);
        }
        return r;
    }
}
