using System.Globalization;
using System.Text.Json.Nodes;
using Coracle.Plugins;

namespace Coracle.Core.Kubernetes;

/// <summary>One condition of a Node's <c>status.conditions</c>, without its times.</summary>
internal sealed record NodeConditionValue(string Type, string Status, string Reason, string Message);

/// <summary>What the etcd-members component reports: its <c>coracle status</c> detail, whether it is degraded, and the conditions of its own Node.</summary>
internal sealed record EtcdMemberReport(string Detail, bool Degraded, IReadOnlyList<NodeConditionValue> Conditions);

/// <summary>
/// The pure part of <see cref="EtcdMembersController"/>: the etcd members as <c>coracle status</c> and the server's own Node
/// show them (K3s's <c>EtcdIsVoter</c>, and Coracle's <c>EtcdQuorum</c> and <c>EtcdMembersHealthy</c>), and the finalizer
/// that keeps a deleted etcd Node until a server has removed its member.
/// </summary>
internal static class EtcdMemberHealth
{
    /// <summary>The finalizer every server puts on Nodes with <see cref="CloudNode.EtcdLabel"/>: a deleted one stays until its member is removed.</summary>
    public const string Finalizer = "coracle.dev/etcd-member";

    /// <summary>K3s's condition: true while the node's member votes (not a learner).</summary>
    public const string IsVoterCondition = "EtcdIsVoter";

    /// <summary>True while a majority of the voting members answers (written only while it does: without quorum nothing is written).</summary>
    public const string QuorumCondition = "EtcdQuorum";

    /// <summary>True while every member answers its health check; the message names the ones that do not.</summary>
    public const string MembersHealthyCondition = "EtcdMembersHealthy";

    /// <summary>The report of a successful member list, seen from the server named <paramref name="self"/>.</summary>
    public static EtcdMemberReport Assess(DatastoreMembers members, string self)
    {
        ArgumentNullException.ThrowIfNull(members);
        var all = members.Members;
        var voting = all.Where(m => !m.IsLearner).ToList();
        var healthyVoting = voting.Count(m => m.Healthy);
        var majority = (voting.Count / 2) + 1;
        var unhealthy = all.Where(m => !m.Healthy).Select(Name).ToList();
        var learners = all.Count(m => m.IsLearner);
        var unhealthyText = unhealthy.Count > 0 ? $" (unhealthy: {string.Join(", ", unhealthy)})" : "";
        string detail;
        if (members.HasQuorum)
        {
            detail = Invariant($"{Plural(all.Count, "member")}, {all.Count(m => m.Healthy)} healthy{(learners > 0 ? ", " + Plural(learners, "learner") : "")}, quorum{unhealthyText}");
        }
        else
        {
            detail = Invariant($"quorum LOST: a majority of the {Plural(voting.Count, "voting member")} cannot be reached{unhealthyText}; writes and the API fail until {majority} of them run");
        }

        var me = all.FirstOrDefault(m => m.Name == self);
        var voter = me switch
        {
            null => new NodeConditionValue(IsVoterCondition, "False", "MemberNotFound", "Node is not a member of the etcd cluster"),
            { IsLearner: true } => new NodeConditionValue(IsVoterCondition, "False", "MemberIsLearner", "Node has not been promoted to voting member of the etcd cluster"),
            _ => new NodeConditionValue(IsVoterCondition, "True", "MemberNotLearner", "Node is a voting member of the etcd cluster"),
        };
        var spare = healthyVoting - majority;
        var quorum = members.HasQuorum
            ? new NodeConditionValue(QuorumCondition, "True", "QuorumReached", Invariant(
                $"{healthyVoting} of {Plural(voting.Count, "voting member")} healthy, a majority is {majority}: {(spare <= 0 ? "one more down stops writes" : Invariant($"{spare} more may go down"))}"))
            : new NodeConditionValue(QuorumCondition, "False", "QuorumLost", Invariant($"a majority of the {Plural(voting.Count, "voting member")} cannot be reached; writes fail until {majority} of them run"));
        var health = unhealthy.Count == 0
            ? new NodeConditionValue(MembersHealthyCondition, "True", "AllMembersHealthy", Invariant($"{all.Count} of {Plural(all.Count, "etcd member")} healthy"))
            : new NodeConditionValue(MembersHealthyCondition, "False", "MembersUnhealthy", Invariant(
                $"{all.Count - unhealthy.Count} of {Plural(all.Count, "etcd member")} healthy; unhealthy: {string.Join(", ", all.Where(m => !m.Healthy).Select(m => m.ClientUrls.Count > 0 ? $"{Name(m)} ({m.ClientUrls[0]})" : Name(m)))}"));
        return new EtcdMemberReport(detail, !members.HasQuorum, [voter, quorum, health]);
    }

    /// <summary>The report when the members cannot even be listed (this server's etcd does not answer): degraded, no conditions.</summary>
    public static EtcdMemberReport Unreachable(string reason) =>
        new($"members unknown: {reason}", true, []);

    /// <summary>
    /// The strategic merge patch of <c>status.conditions</c> that sets <paramref name="wanted"/> on <paramref name="node"/>,
    /// or null when the Node already carries them (same status, reason and message). A condition keeps its
    /// <c>lastTransitionTime</c> while its status stays.
    /// </summary>
    public static JsonObject? ConditionsPatch(JsonObject node, IReadOnlyList<NodeConditionValue> wanted, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(wanted);
        var existing = (node["status"]?["conditions"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(c => Text(c["type"]) is not null)
            .GroupBy(c => Text(c["type"])!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var stamp = now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var changed = false;
        var conditions = new JsonArray();
        foreach (var c in wanted)
        {
            existing.TryGetValue(c.Type, out var had);
            var same = had is not null && Text(had["status"]) == c.Status;
            changed |= !same || Text(had!["reason"]) != c.Reason || Text(had["message"]) != c.Message;
            conditions.Add(new JsonObject
            {
                ["type"] = c.Type,
                ["status"] = c.Status,
                ["reason"] = c.Reason,
                ["message"] = c.Message,
                ["lastHeartbeatTime"] = stamp,
                ["lastTransitionTime"] = same && Text(had!["lastTransitionTime"]) is { } since ? since : stamp,
            });
        }

        return changed ? new JsonObject { ["status"] = new JsonObject { ["conditions"] = conditions } } : null;
    }

    /// <summary>True for a Node labelled <see cref="CloudNode.EtcdLabel"/> (a server whose datastore is an etcd member).</summary>
    public static bool IsEtcdNode(JsonObject node) =>
        node["metadata"]?["labels"] is JsonObject labels && labels.ContainsKey(CloudNode.EtcdLabel);

    /// <summary>True once the Node is being deleted (it has a <c>deletionTimestamp</c>; finalizers hold it).</summary>
    public static bool IsDeleting(JsonObject node) => node["metadata"]?["deletionTimestamp"] is not null;

    public static bool HasFinalizer(JsonObject node) =>
        node["metadata"]?["finalizers"] is JsonArray finalizers && finalizers.Any(f => Text(f) == Finalizer);

    /// <summary>What a server does with this Node now: add the finalizer, act on its deletion, or nothing.</summary>
    public static NodeWork WorkFor(JsonObject node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return (IsDeleting(node), HasFinalizer(node)) switch
        {
            (true, true) => NodeWork.RemoveMember,
            (false, false) when IsEtcdNode(node) => NodeWork.AddFinalizer,
            _ => NodeWork.None,
        };
    }

    /// <summary>Adds <see cref="Finalizer"/>; false when it was there.</summary>
    public static bool AddFinalizer(JsonObject node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (HasFinalizer(node))
        {
            return false;
        }

        var metadata = node["metadata"] as JsonObject ?? throw new InvalidOperationException("the Node has no metadata");
        if (metadata["finalizers"] is not JsonArray finalizers)
        {
            metadata["finalizers"] = finalizers = [];
        }

        finalizers.Add(Finalizer);
        return true;
    }

    /// <summary>Removes <see cref="Finalizer"/>; false when it was not there.</summary>
    public static bool RemoveFinalizer(JsonObject node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node["metadata"]?["finalizers"] is not JsonArray finalizers)
        {
            return false;
        }

        var ours = finalizers.Where(f => Text(f) == Finalizer).ToList();
        foreach (var f in ours)
        {
            finalizers.Remove(f);
        }

        return ours.Count > 0;
    }

    private static string Name(DatastoreMember m) => m.Name.Length > 0 ? m.Name : "(not started)";

    private static string Plural(int n, string what) => Invariant($"{n} {what}{(n == 1 ? "" : "s")}");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}

/// <summary>What <see cref="EtcdMemberHealth.WorkFor"/> asks of a server for one Node.</summary>
internal enum NodeWork
{
    None,
    AddFinalizer,
    RemoveMember,
}
