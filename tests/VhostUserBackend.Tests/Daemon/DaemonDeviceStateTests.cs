using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>Device state transfer (DEVICE_STATE: SET_DEVICE_STATE_FD + CHECK_DEVICE_STATE) through the daemon.</summary>
public sealed class DaemonDeviceStateTests
{
    [Fact]
    public void StateSavedFromOneDaemon_IsLoadedIntoAnother_BadStateIsReported()
    {
        var source = new CopyDevice { WithState = true };
        var target = new CopyDevice { WithState = true };
        using var a = new DaemonRig(source);
        using var b = new DaemonRig(target);

        // The source runs traffic, its state changes, then its ring is stopped (as before migration).
        VhostUserFrontend fa = a.Connect(eventIdx: false, packed: false, VhostUserProtocolFeatures.DeviceState);
        a.Start(eventIdx: false, packed: false);
        a.Submit(0, DaemonRig.Payload(1));
        a.Complete(0);
        for (int i = 0; i < source.Config.Length; i++)
        {
            source.Config[i] = (byte)(0x30 + (i * 7));
        }

        fa.GetVringBase(0);
        byte[] state = Save(fa);
        Assert.Equal([.. "CPYD"u8, .. source.Config], state);

        VhostUserFrontend fb = b.Connect(eventIdx: false, packed: false, VhostUserProtocolFeatures.DeviceState);
        Assert.NotEqual(source.Config, target.Config);
        Load(fb, state);
        fb.CheckDeviceState();
        Assert.Equal(source.Config, target.Config);
        Assert.Equal(source.Config.AsSpan(0, 8).ToArray(), fb.GetConfig(0, 8, VhostUserConfigFlags.None));

        // A state that is not this device's fails at CHECK_DEVICE_STATE; the connection carries on.
        Load(fb, [1, 2, 3]);
        Assert.ThrowsAny<VhostUserException>(fb.CheckDeviceState);
        Assert.Equal(source.Config, target.Config);

        // CHECK_DEVICE_STATE without a transfer is refused too.
        Assert.ThrowsAny<VhostUserException>(fb.CheckDeviceState);
        Assert.Equal(1, fb.GetQueueNum());

        // A back-end that sends more than the front-end takes fails the save on the front-end's
        // side; the front-end does not check, and its next transfer starts over.
        Assert.Throws<InvalidDataException>(() => fa.SaveDeviceState(3, TimeSpan.FromSeconds(10)));

        // The frontend's helpers do the same as QEMU: pipe, transfer, check.
        Array.Fill(target.Config, (byte)0);
        fb.LoadDeviceState(fa.SaveDeviceState(4096, TimeSpan.FromSeconds(10)), TimeSpan.FromSeconds(10));
        Assert.Equal(source.Config, target.Config);
    }

    [Fact]
    public void DeviceWithState_OffersDeviceStateByItself()
    {
        using var rig = new DaemonRig(new CopyDevice { WithState = true });
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, VhostUserProtocolFeatures.DeviceState);
        Assert.Equal(VhostUserProtocolFeatures.DeviceState, f.AckedProtocolFeatures & VhostUserProtocolFeatures.DeviceState);
    }

    [Fact]
    public void DeviceWithoutState_DoesNotOfferIt()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, VhostUserProtocolFeatures.DeviceState);
        Assert.Equal(VhostUserProtocolFeatures.None, f.AckedProtocolFeatures & VhostUserProtocolFeatures.DeviceState);
        (SafeFileHandle mine, SafeFileHandle theirs) = UnixSocket.CreatePair();
        using (mine)
        using (theirs)
        {
            var e = Assert.Throws<InvalidOperationException>(() => f.SetDeviceStateFd(VhostUserTransferDirection.Save, VhostUserTransferPhase.Stopped, theirs));
        }
    }

    /// <summary>What QEMU does on the source: hand over one end of a pipe, read to EOF, check.</summary>
    private static byte[] Save(VhostUserFrontend f)
    {
        (SafeFileHandle mine, SafeFileHandle theirs) = BoundedPipe.Create();
        using (mine)
        {
            using (theirs)
            {
                Assert.Null(f.SetDeviceStateFd(VhostUserTransferDirection.Save, VhostUserTransferPhase.Stopped, theirs));
            }

            var data = new List<byte>();
            var buffer = new byte[5];
            int n;
            while ((n = Fd.Read(mine, buffer)) > 0)
            {
                data.AddRange(buffer.AsSpan(0, n));
            }

            f.CheckDeviceState();
            return [.. data];
        }
    }

    /// <summary>What QEMU does on the destination: hand over one end, write the state, close.</summary>
    private static void Load(VhostUserFrontend f, byte[] state)
    {
        (SafeFileHandle theirs, SafeFileHandle mine) = BoundedPipe.Create();
        using (mine)
        {
            using (theirs)
            {
                Assert.Null(f.SetDeviceStateFd(VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, theirs));
            }

            Assert.Equal(state.Length, Fd.Write(mine, state));
        }
    }
}
