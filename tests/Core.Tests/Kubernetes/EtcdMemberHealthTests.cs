using System.Text.Json.Nodes;
using Coracle.Core.Kubernetes;
using Coracle.Core.Supervision;
using Coracle.Plugins;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Kubernetes;

/// <summary>
/// The etcd-members component's pure part (<see cref="EtcdMemberHealth"/>): the status detail, the Node conditions, the
/// finalizer decisions; and the supervisor's <c>degraded</c> state it reports through.
/// </summary>
public sealed class EtcdMemberHealthTests
{
    private static DatastoreMember Member(string name, bool healthy = true, bool learner = false) =>
        new(name, [$"https://{name}:2380"], [$"https://{name}:2379"], learner, healthy);

    [Fact]
    public void Assess_ThreeHealthyVoters_QuorumDetailAndAllConditionsTrue()
    {
        var report = EtcdMemberHealth.Assess(new DatastoreMembers([Member("s1"), Member("s2"), Member("s3")], HasQuorum: true), "s1");

        Assert.Equal("3 members, 3 healthy, quorum", report.Detail);
        Assert.False(report.Degraded);
        Assert.Equal(
        [
            new NodeConditionValue("EtcdIsVoter", "True", "MemberNotLearner", "Node is a voting member of the etcd cluster"),
            new NodeConditionValue("EtcdQuorum", "True", "QuorumReached", "3 of 3 voting members healthy, a majority is 2: 1 more may go down"),
            new NodeConditionValue("EtcdMembersHealthy", "True", "AllMembersHealthy", "3 of 3 etcd members healthy"),
        ], report.Conditions);
    }

    [Fact]
    public void Assess_OneOfThreeDown_QuorateButTheConditionNamesTheUnhealthyMember()
    {
        var report = EtcdMemberHealth.Assess(new DatastoreMembers([Member("s1"), Member("s2", healthy: false), Member("s3")], HasQuorum: true), "s3");

        Assert.Equal("3 members, 2 healthy, quorum (unhealthy: s2)", report.Detail);
        Assert.False(report.Degraded);
        Assert.Equal(new NodeConditionValue("EtcdQuorum", "True", "QuorumReached", "2 of 3 voting members healthy, a majority is 2: one more down stops writes"), report.Conditions[1]);
        Assert.Equal(new NodeConditionValue("EtcdMembersHealthy", "False", "MembersUnhealthy", "2 of 3 etcd members healthy; unhealthy: s2 (https://s2:2379)"), report.Conditions[2]);
    }

    [Fact]
    public void Assess_QuorumLost_DegradedWithOneLineSayingWritesFail()
    {
        var report = EtcdMemberHealth.Assess(new DatastoreMembers([Member("s1", healthy: false), Member("s2", healthy: false)], HasQuorum: false), "s1");

        Assert.True(report.Degraded);
        Assert.Equal("quorum LOST: a majority of the 2 voting members cannot be reached (unhealthy: s1, s2); writes and the API fail until 2 of them run", report.Detail);
        Assert.Equal(new NodeConditionValue("EtcdQuorum", "False", "QuorumLost", "a majority of the 2 voting members cannot be reached; writes fail until 2 of them run"), report.Conditions[1]);
    }

    [Fact]
    public void Assess_LearnerAndStranger_IsVoterFalseWithK3sReasons()
    {
        var members = new DatastoreMembers([Member("s1"), Member("s2", learner: true), Member("", healthy: false, learner: true)], HasQuorum: true);

        Assert.Equal(new NodeConditionValue("EtcdIsVoter", "False", "MemberIsLearner", "Node has not been promoted to voting member of the etcd cluster"),
            EtcdMemberHealth.Assess(members, "s2").Conditions[0]);
        Assert.Equal(new NodeConditionValue("EtcdIsVoter", "False", "MemberNotFound", "Node is not a member of the etcd cluster"),
            EtcdMemberHealth.Assess(members, "s9").Conditions[0]);
        Assert.Equal("3 members, 2 healthy, 2 learners, quorum (unhealthy: (not started))", EtcdMemberHealth.Assess(members, "s1").Detail);
    }

    [Fact]
    public void Unreachable_ListFails_DegradedWithTheReasonAndNoConditions()
    {
        var report = EtcdMemberHealth.Unreachable("cannot list etcd members: etcd does not answer");

        Assert.True(report.Degraded);
        Assert.Equal("members unknown: cannot list etcd members: etcd does not answer", report.Detail);
        Assert.Empty(report.Conditions);
    }

    [Fact]
    public void ConditionsPatch_UnchangedConditions_NoPatch_ChangedOnesKeepOrResetTheirTransitionTime()
    {
        var wanted = EtcdMemberHealth.Assess(new DatastoreMembers([Member("s1"), Member("s2", healthy: false), Member("s3")], HasQuorum: true), "s1").Conditions;
        var node = new JsonObject { ["metadata"] = new JsonObject { ["name"] = "s1" }, ["status"] = new JsonObject { ["conditions"] = new JsonArray(
            new JsonObject { ["type"] = "Ready", ["status"] = "True" }) } };
        var t0 = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

        var first = EtcdMemberHealth.ConditionsPatch(node, wanted, t0)!;
        var conditions = first["status"]!["conditions"]!.AsArray();
        Assert.Equal(["EtcdIsVoter", "EtcdQuorum", "EtcdMembersHealthy"], conditions.Select(c => c!["type"]!.GetValue<string>()));
        Assert.All(conditions, c => Assert.Equal("2026-01-02T03:04:05Z", c!["lastTransitionTime"]!.GetValue<string>()));

        // The Node now carries them (the patch merged by type): nothing to write.
        var carried = node["status"]!["conditions"]!.AsArray();
        foreach (var condition in conditions)
        {
            carried.Add(condition!.DeepClone());
        }

        Assert.Null(EtcdMemberHealth.ConditionsPatch(node, wanted, t0.AddMinutes(1)));

        // s2 recovers: only EtcdMembersHealthy changes status, so only its transition time moves.
        var healed = EtcdMemberHealth.Assess(new DatastoreMembers([Member("s1"), Member("s2"), Member("s3")], HasQuorum: true), "s1").Conditions;
        var second = EtcdMemberHealth.ConditionsPatch(node, healed, t0.AddMinutes(2))!["status"]!["conditions"]!.AsArray();
        Assert.Equal("2026-01-02T03:04:05Z", second[0]!["lastTransitionTime"]!.GetValue<string>());
        Assert.Equal("2026-01-02T03:04:05Z", second[1]!["lastTransitionTime"]!.GetValue<string>());
        Assert.Equal("2026-01-02T03:06:05Z", second[2]!["lastTransitionTime"]!.GetValue<string>());
        Assert.Equal("True", second[2]!["status"]!.GetValue<string>());
    }

    [Fact]
    public void WorkFor_EtcdAndOtherNodes_FinalizerOnlyOnEtcdNodes_RemovalOnlyWhenDeletedWithIt()
    {
        static JsonObject Node(bool etcd, bool deleting, bool finalizer)
        {
            var metadata = new JsonObject { ["name"] = "n", ["labels"] = new JsonObject() };
            if (etcd)
            {
                metadata["labels"]![CloudNode.EtcdLabel] = "true";
            }

            if (deleting)
            {
                metadata["deletionTimestamp"] = "2026-01-02T03:04:05Z";
            }

            if (finalizer)
            {
                metadata["finalizers"] = new JsonArray("other.io/keep", EtcdMemberHealth.Finalizer);
            }

            return new JsonObject { ["metadata"] = metadata };
        }

        Assert.Equal(NodeWork.AddFinalizer, EtcdMemberHealth.WorkFor(Node(etcd: true, deleting: false, finalizer: false)));
        Assert.Equal(NodeWork.None, EtcdMemberHealth.WorkFor(Node(etcd: true, deleting: false, finalizer: true)));
        Assert.Equal(NodeWork.RemoveMember, EtcdMemberHealth.WorkFor(Node(etcd: true, deleting: true, finalizer: true)));
        Assert.Equal(NodeWork.RemoveMember, EtcdMemberHealth.WorkFor(Node(etcd: false, deleting: true, finalizer: true)));

        // Deleted before any server put the finalizer on: nothing is known of its member, nothing is removed.
        Assert.Equal(NodeWork.None, EtcdMemberHealth.WorkFor(Node(etcd: true, deleting: true, finalizer: false)));
        Assert.Equal(NodeWork.None, EtcdMemberHealth.WorkFor(Node(etcd: false, deleting: false, finalizer: false)));

        var node = Node(etcd: true, deleting: true, finalizer: true);
        Assert.True(EtcdMemberHealth.RemoveFinalizer(node));
        Assert.False(EtcdMemberHealth.RemoveFinalizer(node));
        Assert.Equal(["other.io/keep"], node["metadata"]!["finalizers"]!.AsArray().Select(f => f!.GetValue<string>()));
        var fresh = Node(etcd: true, deleting: false, finalizer: false);
        Assert.True(EtcdMemberHealth.AddFinalizer(fresh));
        Assert.False(EtcdMemberHealth.AddFinalizer(fresh));
        Assert.Equal([EtcdMemberHealth.Finalizer], fresh["metadata"]!["finalizers"]!.AsArray().Select(f => f!.GetValue<string>()));
    }

    [Fact]
    public async Task ReportHealth_ReadyComponent_ShowsDegradedWhileReportedThenReadyAgain()
    {
        var supervisor = new Supervisor(NullLoggerFactory.Instance);
        supervisor.Add(new InProcessComponent { Name = "watcher", Run = ct => Task.Delay(Timeout.Infinite, ct) });
        try
        {
            supervisor.Start(CancellationToken.None);
            await supervisor.WaitReadyAsync("watcher", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

            supervisor.ReportHealth("watcher", "quorum LOST: …", degraded: true);
            var degraded = supervisor.Snapshot().Single(c => c.Name == "watcher");
            Assert.Equal((ComponentState.Degraded, "quorum LOST: …"), (degraded.State, degraded.Detail));

            supervisor.ReportHealth("watcher", "2 members, 2 healthy, quorum", degraded: false);
            var ready = supervisor.Snapshot().Single(c => c.Name == "watcher");
            Assert.Equal((ComponentState.Ready, "2 members, 2 healthy, quorum"), (ready.State, ready.Detail));
            Assert.Throws<InvalidOperationException>(() => supervisor.ReportHealth("nobody", "x", degraded: true));
        }
        finally
        {
            await supervisor.StopAsync();
        }
    }
}
