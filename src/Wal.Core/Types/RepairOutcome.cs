namespace Wal;

/// <summary>What <see cref="WalDirectory.Repair"/> did.</summary>
public enum RepairOutcome
{
    /// <summary>The last segment ends cleanly; nothing was changed.</summary>
    NothingToRepair,

    /// <summary>A torn last record was cut off; the damaged segment was kept beside it as "*.wal.broken".</summary>
    Repaired,
}
