# debian-mirror.sh: sourced by the scripts that fetch packages from another Debian suite with a
# private apt state (guest/fetch-kernel.sh, guest/fetch-qemu.sh, peers/fetch-virtiofsd-rs.sh).
# debian_mirror_uri prints the first Debian archive URI of this machine's apt sources (deb822
# debian.sources, else the one-line sources.list), skipping the security archive; nothing when
# there is none.
debian_mirror_uri() {
  local uri=
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  printf '%s' "$uri"
}
