using VhostUserBackend.Migration;
using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Vdpa;
using Vhost.Virtio;
using VhostUserBackend.Config;
using VhostUserBackend.Memory;

namespace VhostUserBackend;

/// <summary>
/// What a vhost-user device implements to be served by <see cref="VhostUserDaemon"/> (the
/// rust-vmm <c>VhostUserBackend</c> trait). A device must say how many queues it has, how large
/// they may be, which virtio features it offers, and how it handles an event; everything else
/// has a default.
/// </summary>
/// <remarks>
/// <para>Threads: <see cref="HandleEvent"/> runs on the worker thread that serves the queue group
/// (<see cref="QueuesPerWorker"/>), one event at a time per worker; different workers call it
/// concurrently. Every other member is called from the daemon's control thread (the one reading
/// the vhost-user socket), one call at a time. While the control thread changes a ring or the
/// memory, the worker serving it is paused between two events, so <see cref="HandleEvent"/> never
/// sees a ring change under it.</para>
/// <para>Failures: throw a <see cref="VhostException"/> (or <see cref="ArgumentException"/>) from a
/// control-plane member; the daemon reports it to the front-end where the protocol can. An
/// exception from <see cref="HandleEvent"/> is logged and signalled on the ring's error eventfd.</para>
/// </remarks>
public interface IVhostUserBackend
{
    /// <summary>The number of queues (virtqueues) the device has.</summary>
    int QueueCount { get; }

    /// <summary>The largest queue size the device accepts (a power of two, at most 32768).</summary>
    ushort MaxQueueSize { get; }

    /// <summary>
    /// The virtio feature bits the device offers. The daemon adds
    /// <see cref="VhostUserVirtioFeatures.ProtocolFeatures"/> and, when <see cref="ProtocolFeatures"/>
    /// offers <see cref="VhostUserProtocolFeatures.LogShmFd"/>, <see cref="VhostUserVirtioFeatures.LogAll"/>.
    /// Offer <see cref="VirtioFeatures.RingEventIndex"/> and
    /// <see cref="VirtioFeatures.RingPacked"/> here when the device supports them.
    /// </summary>
    ulong Features { get; }

    /// <summary>
    /// The vhost-user protocol features the device offers. The default offers what the daemon
    /// implements for every device: MQ, LOG_SHMFD, BACKEND_REQ, INFLIGHT_SHMFD, RESET_DEVICE,
    /// CONFIGURE_MEM_SLOTS, STATUS and INBAND_NOTIFICATIONS. The daemon adds CONFIG when the device
    /// has a <see cref="ConfigSpace"/>; add it yourself only when you implement <see cref="GetConfig"/>
    /// by hand. The daemon adds DEVICE_STATE when the device has a <see cref="DeviceState"/>. REPLY_ACK is always added.
    /// </summary>
    VhostUserProtocolFeatures ProtocolFeatures => DefaultProtocolFeatures;

    /// <summary>
    /// Which queues each worker serves: one list of queue indices per worker (the rust-vmm
    /// <c>queues_per_thread</c>, as index lists so any queue count can be spread). Each queue must
    /// appear in exactly one list. The default is one worker serving every queue.
    /// </summary>
    IReadOnlyList<IReadOnlyList<int>> QueuesPerWorker => [Enumerable.Range(0, Math.Max(QueueCount, 0)).ToArray()];

    /// <summary>
    /// How long worker <paramref name="workerIndex"/> spins on its rings with notifications
    /// disabled after an event before going back to epoll (polling mode, trading a core for
    /// latency). <see cref="TimeSpan.Zero"/> (the default) turns polling off.
    /// </summary>
    /// <param name="workerIndex">The worker.</param>
    /// <returns>The polling window.</returns>
    TimeSpan GetPollingTime(int workerIndex) => TimeSpan.Zero;

    /// <summary>
    /// Handles one event on a worker thread: a kick of queue <paramref name="deviceEvent"/>
    /// (when it is below <see cref="QueueCount"/>), or readiness of an fd the device registered
    /// with <see cref="VhostUserWorker.RegisterListener"/> (its data value). The daemon has
    /// already drained the kick eventfd and skips rings that are stopped or disabled.
    /// </summary>
    /// <param name="deviceEvent">The queue index, or the data value of a registered listener.</param>
    /// <param name="events">The epoll events that fired.</param>
    /// <param name="vrings">The rings this worker serves, in ascending queue order (<see cref="Vring.Index"/> is the queue index).</param>
    /// <param name="workerIndex">The worker's index.</param>
    void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex);

    /// <summary>
    /// Called for each worker when the daemon starts; an eventfd returned here is watched by that
    /// worker, which stops when it becomes readable (the rust-vmm <c>exit_event</c>). The daemon
    /// owns and disposes it. Default: none (the daemon stops its workers itself).
    /// </summary>
    /// <param name="workerIndex">The worker.</param>
    /// <returns>The exit eventfd, or <see langword="null"/>.</returns>
    EventFd? CreateExitEvent(int workerIndex) => null;

    /// <summary>Called once when the daemon's workers exist; the device may register its own fds on them.</summary>
    /// <param name="workers">The workers, by index (the order of <see cref="QueuesPerWorker"/>).</param>
    void OnWorkersStarted(IReadOnlyList<VhostUserWorker> workers)
    {
    }

    /// <summary>The front-end acked <paramref name="features"/> (SET_FEATURES).</summary>
    /// <param name="features">The acked virtio feature bits.</param>
    void AcknowledgeFeatures(ulong features)
    {
    }

    /// <summary>Whether VIRTIO_RING_F_EVENT_IDX is in use (called after SET_FEATURES).</summary>
    /// <param name="enabled">Whether it was acked.</param>
    void SetEventIndex(bool enabled)
    {
    }

    /// <summary>The guest memory changed (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG, dirty logging on or off).</summary>
    /// <param name="memory">The holder of the current snapshot (the same object for the whole connection).</param>
    void UpdateMemory(GuestMemoryAtomic memory)
    {
    }

    /// <summary>A ring was started, stopped, enabled or disabled (read <see cref="Vring.IsStarted"/> and <see cref="Vring.IsEnabled"/>).</summary>
    /// <param name="vring">The ring.</param>
    void OnVringStateChanged(Vring vring)
    {
    }

    /// <summary>
    /// Put back, with <see cref="Vring.Unpop"/> and newest first, every chain of <paramref name="vring"/>
    /// that the device holds without working on it: buffers popped ahead of data that has not
    /// arrived (a network device's receive buffers waiting for a frame, an event queue's buffers
    /// waiting for an event). The daemon is about to stop the ring or to change the guest memory
    /// under it, and a held chain would otherwise be lost to the driver (the ring's base counts it
    /// as consumed) and make the daemon wait <see cref="VhostUserDaemonOptions.InFlightTimeout"/>
    /// for a completion that is not coming. The default does nothing.
    /// </summary>
    /// <remarks>
    /// <para>Called on the control thread, while the worker serving the ring is paused between two
    /// <see cref="HandleEvent"/> calls, for a ring that has chains in flight and is not broken. The
    /// device may use the state its worker keeps for this ring, and <see cref="Vring.Unpop"/>,
    /// without a lock (the pause orders memory both ways); other rings' workers may be running.
    /// Called before: GET_VRING_BASE (the base it returns then excludes the chains put back), a
    /// SET_VRING_KICK that restarts a started ring, RESET_DEVICE, the end of the connection, and
    /// every guest memory change (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG, SET_LOG_BASE, dirty
    /// logging turned on or off).</para>
    /// <para>Afterwards the daemon waits (bounded) for the chains still in flight, those the device
    /// is really working on. After a memory change the ring keeps running and the worker calls
    /// <see cref="HandleEvent"/> for it once more, so the device pops the chains again, under the new
    /// memory; after a stop, it pops them when the ring is started again. Keep nothing of a chain
    /// put back. An exception is logged and the daemon carries on (the chains left in flight are
    /// waited for, then abandoned).</para>
    /// </remarks>
    /// <param name="vring">The ring.</param>
    void UnpopHeldChains(Vring vring)
    {
    }

    /// <summary>
    /// In-flight migration: suspend every request of <paramref name="vring"/> still in flight instead
    /// of finishing it, because the front-end stops the ring with GET_VRING_BASE_SKIP_DRAIN (or
    /// GET_VRING_BASE with GET_VRING_BASE_INFLIGHT alone). Offer
    /// <see cref="VhostUserProtocolFeatures.GetVringBaseInflight"/> (with
    /// <see cref="VhostUserProtocolFeatures.InflightShmFd"/>) in <see cref="ProtocolFeatures"/> when the
    /// device implements this; the daemon then offers GET_VRING_BASE_SKIP_DRAIN by itself. Return
    /// <see langword="false"/> (the default) to have the daemon drain instead.
    /// </summary>
    /// <remarks>
    /// <para>What the device must guarantee when it returns <see langword="true"/>: no host I/O of
    /// those requests is still running or can still start (cancel it and wait for the cancellation,
    /// or wait for it to finish), and the device never completes them (no <see cref="Vring.Complete"/>
    /// or <see cref="Vring.AddUsed"/> for them, now or later; the daemon drops one that comes anyway).
    /// Requests whose host I/O finished may be completed before returning: they are published. The
    /// others stay marked in the inflight region and the next back-end (the migration destination,
    /// or this daemon when the source resumes) executes them again, so their I/O must be safe to
    /// repeat: a block write writes the same data to the same place, a read reads again. A write
    /// that could still land after the return would overwrite what the guest writes later on the
    /// destination: that is the data loss this contract excludes.</para>
    /// <para>Called on the control thread, the ring's worker paused (as for <see cref="UnpopHeldChains"/>,
    /// which runs first), for a ring with requests in flight that records them in an inflight
    /// region. An exception is logged and the daemon drains instead.</para>
    /// </remarks>
    /// <param name="vring">The ring.</param>
    /// <returns>Whether the requests were suspended.</returns>
    bool SuspendInFlight(Vring vring) => false;

    /// <summary>
    /// SEND_RARP, with <see cref="VhostUserProtocolFeatures.Rarp"/> offered: a live migration
    /// brought the guest with this MAC address here, and the guest will not announce itself
    /// (it did not ack VIRTIO_NET_F_GUEST_ANNOUNCE). A switch learns that the address is now behind
    /// this port and broadcasts a RARP for it, as DPDK's vhost library does, so its peers find the
    /// guest at once. QEMU sends it up to five times per migration, the first before any ring is
    /// set up. Called on the control thread; the default does nothing.
    /// </summary>
    /// <param name="macAddress">The guest's MAC address (6 bytes).</param>
    void SendRarp(ReadOnlySpan<byte> macAddress)
    {
    }

    /// <summary>
    /// GET_SHMEM_CONFIG, with <see cref="VhostUserProtocolFeatures.Shmem"/> offered in
    /// <see cref="ProtocolFeatures"/>: the sizes of the device's VIRTIO shared memory regions (the
    /// dispatcher checks the answer: page-multiple sizes, a count that matches). Called on the
    /// control thread; the default refuses (no shared memory regions).
    /// </summary>
    /// <returns>The configuration.</returns>
    VhostUserShmemConfig GetShmemConfig() => throw new NotSupportedException("this device has no shared memory regions");

    /// <summary>
    /// GET_SHARED_OBJECT, with <see cref="VhostUserProtocolFeatures.SharedObject"/> offered: the
    /// dmabuf of an object this device exported (<see cref="VhostUserBackendChannel.SharedObjectAdd"/>).
    /// Called on the control thread; the daemon sends the fd and closes it. The default refuses.
    /// </summary>
    /// <param name="uuid">The object.</param>
    /// <returns>The dmabuf fd, or <see langword="null"/> when the object is unknown (the front-end is told it failed).</returns>
    SafeFileHandle? GetSharedObject(Guid uuid) => throw new NotSupportedException("this device exports no shared objects");

    /// <summary>
    /// GPU_SET_SOCKET: the socket of the vhost-user GPU protocol (a vhost-user-gpu device's second
    /// channel to QEMU). The device owns <paramref name="socket"/> from now on; never block a
    /// thread of the daemon on it. The default closes it and refuses.
    /// </summary>
    /// <param name="socket">The connected socket.</param>
    void SetGpuSocket(SafeFileHandle socket)
    {
        socket.Dispose();
        throw new NotSupportedException("this device is not a GPU");
    }

    /// <summary>
    /// The device's config space, or <see langword="null"/> (the default) for none. When the device
    /// has one, the daemon offers <see cref="VhostUserProtocolFeatures.Config"/> by itself, serves
    /// GET_CONFIG and SET_CONFIG from it (<see cref="GetConfig"/> and <see cref="SetConfig"/> are not
    /// called), and notifies the driver (CONFIG_CHANGE_MSG) when the device changes it. Read once,
    /// when a front-end connects: return the same object every time.
    /// </summary>
    VirtioConfigSpace? ConfigSpace => null;

    /// <summary>GET_CONFIG, for a device without <see cref="ConfigSpace"/> that serves its config by hand: fill <paramref name="data"/> from config space at <paramref name="offset"/>.</summary>
    /// <param name="offset">The offset in config space.</param>
    /// <param name="data">The bytes to fill.</param>
    void GetConfig(uint offset, Span<byte> data) => throw new NotSupportedException("this device has no config space");

    /// <summary>SET_CONFIG, for a device without <see cref="ConfigSpace"/> that serves its config by hand: write config space.</summary>
    /// <param name="offset">The offset in config space.</param>
    /// <param name="data">The bytes.</param>
    void SetConfig(uint offset, ReadOnlySpan<byte> data) => throw new NotSupportedException("this device's config space is read-only");

    /// <summary>
    /// The back-end channel (SET_BACKEND_REQ_FD): the device may keep it to send requests to the
    /// front-end (config change, vring call). The daemon owns and disposes it at disconnect.
    /// </summary>
    /// <param name="channel">The channel.</param>
    void SetBackendChannel(VhostUserBackendChannel channel)
    {
    }

    /// <summary>
    /// The device's migratable state, or <see langword="null"/> (the default) for none. When the
    /// device has one, the daemon offers <see cref="VhostUserProtocolFeatures.DeviceState"/> by
    /// itself and serves SET_DEVICE_STATE_FD and CHECK_DEVICE_STATE with it (the pipe, its thread and
    /// its timeout are the daemon's). Read once, when a front-end connects.
    /// </summary>
    IVhostUserDeviceState? DeviceState => null;

    /// <summary>
    /// The driver status changed (called on the control thread). Ring starts and stops are
    /// reported separately, to <see cref="OnVringStateChanged"/>.
    /// </summary>
    /// <remarks>
    /// <para>With the STATUS protocol feature (offered by default) this is each SET_STATUS value
    /// that differs from the last one. QEMU sends FEATURES_OK after SET_FEATURES,
    /// ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK when it starts the device, and
    /// <see cref="VirtioDeviceStatus.Reset"/> (0) whenever it stops it: on a pause, a migration
    /// and a reboot alike, so 0 means "stopped", not "forget the device state".</para>
    /// <para>Without STATUS the daemon derives the value: ACKNOWLEDGE|DRIVER|FEATURES_OK once
    /// features are acked, with DRIVER_OK while at least one ring runs, and 0 after
    /// RESET_DEVICE and at disconnect.</para>
    /// </remarks>
    /// <param name="status">The new status.</param>
    void OnDriverStatusChanged(VirtioDeviceStatus status)
    {
    }

    /// <summary>RESET_DEVICE, and the end of a front-end connection: return to the initial device state.</summary>
    void Reset()
    {
    }

    /// <summary>The protocol features the daemon implements for every device.</summary>
    public const VhostUserProtocolFeatures DefaultProtocolFeatures = VhostUserProtocolFeatures.MQ
        | VhostUserProtocolFeatures.LogShmFd | VhostUserProtocolFeatures.BackendRequest
        | VhostUserProtocolFeatures.InflightShmFd | VhostUserProtocolFeatures.ResetDevice
        | VhostUserProtocolFeatures.ConfigureMemorySlots | VhostUserProtocolFeatures.Status
        | VhostUserProtocolFeatures.InbandNotifications;
}
