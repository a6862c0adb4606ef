#!/bin/bash
# Rebuild the package-manager fixtures in this folder from scratch, with the real tools.
#
#   bash tests/data/packages/make_fixtures.sh [dpkg] [rpm] [apk] [pip] [npm]   (default: all)
#
# Needs: Debian 12, root, network access to Debian's archive, PyPI and the npm registry.
# apk also needs the apk-tools and abuild sources (not packaged for Debian 12), see apk below.
#
# Every fixture is made the same way: a root folder $R on the host, the real package tool
# run against it one build step at a time, and after each step make_fixtures.py copies $R to
# a snapshot. The layers are the diffs between consecutive snapshots; the expected lists come
# from the tools' own query commands run against each snapshot.
#
# Scratch space: $W (default /work/pkgfix/build), wiped per fixture.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
W=${W:-/work/pkgfix/build}
PY=(python3 "$HERE/make_fixtures.py")
export SOURCE_DATE_EPOCH=1700000000   # mtimes of the files inside the packages we build
export LC_ALL=C TZ=UTC

# apt_install PACKAGE...: the tools, from Debian 12's archive
apt_install() {
    [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-upgrade "$@" >/dev/null
}

# step 'COMMAND': run COMMAND (with $R, the root folder, in it) and snapshot $R as a layer
# whose history entry ("created_by") is COMMAND as written.
step() {
    echo "+ $1"
    eval "$1"
    "${PY[@]}" snapshot "$WORK" "$R" "$1"
}

# start NAME: a fresh root folder $R and scratch folder $WORK for one fixture.
start() {
    WORK=$W/$1
    rm -rf "$WORK"
    mkdir -p "$WORK"
    R=$WORK/root
    mkdir -p "$R"
}

# usrmerge_base: the base every fixture but apk starts from, as on Debian 12 / Fedora:
# /bin, /lib, /sbin are symlinks into /usr.
usrmerge_base() {
    mkdir -p "$R"/usr/bin "$R"/usr/lib "$R"/usr/sbin "$R"/etc "$R"/tmp "$R"/var/lib
    chmod 1777 "$R"/tmp
    ln -s usr/bin "$R"/bin
    ln -s usr/lib "$R"/lib
    ln -s usr/sbin "$R"/sbin
    printf 'NAME="fixture-base"\nID=fixture\n' > "$R"/usr/lib/os-release
    ln -s ../usr/lib/os-release "$R"/etc/os-release
}

# ---------------------------------------------------------------------------------- dpkg

# build_deb NAME VERSION DIR: a tiny Architecture: all package from the tree in DIR.
build_deb() {
    local name=$1 version=$2 dir=$3
    mkdir -p "$dir"/DEBIAN
    cat > "$dir"/DEBIAN/control <<EOF
Package: $name
Version: $version
Architecture: all
Maintainer: Layer Explorer fixtures <fixtures@example.invalid>
Section: misc
Priority: optional
Description: $name, a tiny package for Layer Explorer's tests
EOF
    find "$dir" -path "$dir/DEBIAN" -prune -o -type f -path "$dir/etc/*" -printf '/%P\n' \
        | sort > "$dir"/DEBIAN/conffiles
    [ -s "$dir"/DEBIAN/conffiles ] || rm "$dir"/DEBIAN/conffiles
    (cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort | xargs md5sum > DEBIAN/md5sums)
    find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zgzip --build "$dir" "$WORK/debs/${name}_${version}_all.deb" >/dev/null
}

# put FILE MODE TEXT: write a file of a package tree
put() { mkdir -p "$(dirname "$1")"; printf '%s\n' "$3" > "$1"; chmod "$2" "$1"; }

make_dpkg() {
    start dpkg   # dpkg, dpkg-deb and apt-get are on every Debian
    mkdir -p "$WORK"/debs "$WORK"/src
    # real packages from Debian 12's archive: hostname ships /bin/hostname (+ symlinks in
    # /bin), tree and sensible-utils ship /usr/bin files; all three have no maintainer scripts
    (cd "$WORK"/debs && apt-get download -q hostname=3.23+nmu1 tree=2.1.0-1 sensible-utils=0.0.17+nmu1)

    # our own: fixture-tool 1.0 and 2.0 (files in /bin, /sbin and /usr/bin, a conffile, a file
    # 2.0 drops and one it adds), fixture-extra 1.0 (a /sbin file and a conffile).
    # fixture-tool keeps owning /sbin: when the last package that lists /sbin is removed,
    # dpkg deletes the /sbin -> usr/sbin symlink itself (dpkg 1.21.22 and 1.21.23)
    local s=$WORK/src
    put "$s"/tool-1/bin/fixture-tool 755 '#!/bin/sh
echo "fixture-tool 1.0"'
    put "$s"/tool-1/usr/bin/fixture-tool-helper 755 '#!/bin/sh
echo "helper 1.0"'
    put "$s"/tool-1/sbin/fixture-toold 755 '#!/bin/sh
echo "fixture-toold 1.0"'
    put "$s"/tool-1/etc/fixture-tool.conf 644 'level=1'
    put "$s"/tool-1/usr/share/doc/fixture-tool/README 644 'fixture-tool 1.0'
    put "$s"/tool-1/usr/share/doc/fixture-tool/OLD-NOTES 644 'dropped in 2.0'
    build_deb fixture-tool 1.0 "$s"/tool-1

    put "$s"/tool-2/bin/fixture-tool 755 '#!/bin/sh
echo "fixture-tool 2.0, a longer script than 1.0 had"'
    put "$s"/tool-2/usr/bin/fixture-tool-helper 755 '#!/bin/sh
echo "helper 2.0"'
    put "$s"/tool-2/bin/fixture-tool-new 755 '#!/bin/sh
echo "new in 2.0"'
    put "$s"/tool-2/sbin/fixture-toold 755 '#!/bin/sh
echo "fixture-toold 2.0"'
    put "$s"/tool-2/etc/fixture-tool.conf 644 'level=2'
    put "$s"/tool-2/usr/share/doc/fixture-tool/README 644 'fixture-tool 2.0'
    build_deb fixture-tool 2.0 "$s"/tool-2

    put "$s"/extra-1/sbin/fixture-extrad 755 '#!/bin/sh
echo "fixture-extrad 1.0"'
    put "$s"/extra-1/etc/fixture-extra/extra.conf 644 'enabled=yes'
    put "$s"/extra-1/usr/share/doc/fixture-extra/README 644 'fixture-extra 1.0'
    build_deb fixture-extra 1.0 "$s"/extra-1

    cd "$WORK"/debs
    # --log: as in a container build the log lands in the image (dpkg's default is the host's)
    step 'usrmerge_base; mkdir -p "$R"/var/log "$R"/var/lib/dpkg/info "$R"/var/lib/dpkg/updates "$R"/var/lib/dpkg/triggers; touch "$R"/var/lib/dpkg/status'
    step 'dpkg --root="$R" --log="$R"/var/log/dpkg.log --force-depends -i hostname_3.23+nmu1_amd64.deb tree_2.1.0-1_amd64.deb sensible-utils_0.0.17+nmu1_all.deb'
    step 'dpkg --root="$R" --log="$R"/var/log/dpkg.log -i fixture-tool_1.0_all.deb fixture-extra_1.0_all.deb'
    step 'dpkg --root="$R" --log="$R"/var/log/dpkg.log -i fixture-tool_2.0_all.deb'
    step 'dpkg --root="$R" --log="$R"/var/log/dpkg.log -r fixture-extra'
    step 'dpkg --root="$R" --log="$R"/var/log/dpkg.log -P tree'
    step 'dpkg --root="$R" --log="$R"/var/log/dpkg.log -P fixture-extra'
    step 'mkdir -p "$R"/app && head -c 102400 /dev/zero | tr "\0" "x" > "$R"/app/data.bin'
    cd "$HERE"

    "${PY[@]}" pack "$WORK" "$HERE"/dpkg.docker.tar fixture-packages:dpkg
    "${PY[@]}" expected dpkg "$WORK" "$HERE"/dpkg.expected.json \
        --tool "$(dpkg-query --version | head -1)" \
        --notes "Per layer: dpkg-query --admindir=SNAPSHOT/var/lib/dpkg -W -f='\${Package}\\t\${Version}\\t\${Architecture}\\t\${db:Status-Abbrev}\\n' (status = db:Status-Abbrev, e.g. 'ii ' installed, 'rc ' removed with config files left) and dpkg-query --admindir=... -L NAME for every package it lists (for 'rc ' packages: only the conffiles still listed). 'final' (last layer only) is computed by make_fixtures.py from the last snapshot, not by dpkg: listed paths that exist there, folder symlinks such as /bin -> usr/bin followed, each resolved path counted once; bytes = sizes of those that are regular files."
}


# ----------------------------------------------------------------------------------- rpm

# build_rpm NAME VERSION SPEC-TAIL: a tiny noarch rpm; SPEC-TAIL has %install and %files
build_rpm() {
    local name=$1 version=$2 tail=$3
    cat > "$WORK"/rpmbuild/SPECS/$name-$version.spec <<SPEC
Name:       $name
Version:    $version
Release:    1
Summary:    $name, a tiny package for Layer Explorer's tests
License:    MIT
BuildArch:  noarch

%description
$name $version, a tiny package for Layer Explorer's tests.

%prep
%build
$tail
SPEC
    rpmbuild --quiet -bb --define "_topdir $WORK/rpmbuild" \
        --define 'use_source_date_epoch_as_buildtime 1' --define 'clamp_mtime_to_source_date_epoch 1' \
        --define '_buildhost fixtures.example.invalid' \
        "$WORK"/rpmbuild/SPECS/$name-$version.spec
}

make_rpm() {
    apt_install rpm   # rpm 4.18.0+dfsg-1+deb12u1: rpm, rpmbuild, rpmdb
    start rpm
    mkdir -p "$WORK"/rpmbuild/SPECS
    build_rpm fixture-tool 1.0 '%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/usr/share/doc/fixture-tool
printf "#!/bin/sh\necho fixture-tool 1.0\n" > %{buildroot}/usr/bin/fixture-tool
chmod 755 %{buildroot}/usr/bin/fixture-tool
echo level=1 > %{buildroot}/etc/fixture-tool.conf
echo "fixture-tool 1.0" > %{buildroot}/usr/share/doc/fixture-tool/README
echo "dropped in 2.0" > %{buildroot}/usr/share/doc/fixture-tool/OLD-NOTES

%files
/usr/bin/fixture-tool
%config(noreplace) /etc/fixture-tool.conf
%dir /usr/share/doc/fixture-tool
/usr/share/doc/fixture-tool/README
/usr/share/doc/fixture-tool/OLD-NOTES'
    build_rpm fixture-tool 2.0 '%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/usr/share/doc/fixture-tool
printf "#!/bin/sh\necho fixture-tool 2.0, a longer script than 1.0 had\n" > %{buildroot}/usr/bin/fixture-tool
printf "#!/bin/sh\necho new in 2.0\n" > %{buildroot}/usr/bin/fixture-tool-new
chmod 755 %{buildroot}/usr/bin/fixture-tool %{buildroot}/usr/bin/fixture-tool-new
echo level=2 > %{buildroot}/etc/fixture-tool.conf
echo "fixture-tool 2.0" > %{buildroot}/usr/share/doc/fixture-tool/README

%files
/usr/bin/fixture-tool
/usr/bin/fixture-tool-new
%config(noreplace) /etc/fixture-tool.conf
%dir /usr/share/doc/fixture-tool
/usr/share/doc/fixture-tool/README'
    build_rpm fixture-extra 1.0 '%install
mkdir -p %{buildroot}/usr/sbin %{buildroot}/usr/share/fixture-extra
printf "#!/bin/sh\necho fixture-extrad 1.0\n" > %{buildroot}/usr/sbin/fixture-extrad
chmod 755 %{buildroot}/usr/sbin/fixture-extrad
head -c 20000 /dev/zero | tr "\0" "e" > %{buildroot}/usr/share/fixture-extra/data.txt
ln -s data.txt %{buildroot}/usr/share/fixture-extra/current.txt

%files
/usr/sbin/fixture-extrad
%dir /usr/share/fixture-extra
/usr/share/fixture-extra/data.txt
/usr/share/fixture-extra/current.txt'

    cd "$WORK"/rpmbuild/RPMS/noarch
    # Debian's rpm keeps its own database in ~/.rpmdb; images keep it in /var/lib/rpm
    # (RHEL/CentOS Stream 9, UBI 9; Fedora >= 36 moved it to /usr/lib/sysimage/rpm)
    local db='--dbpath /var/lib/rpm'
    step "usrmerge_base; rpm --root \"\$R\" $db --initdb"
    step "rpm --root \"\$R\" $db -i --nodeps fixture-tool-1.0-1.noarch.rpm fixture-extra-1.0-1.noarch.rpm"
    step "rpm --root \"\$R\" $db -U --nodeps fixture-tool-2.0-1.noarch.rpm"
    step "rpm --root \"\$R\" $db -e --nodeps fixture-extra"
    cd "$HERE"

    "${PY[@]}" pack "$WORK" "$HERE"/rpm-sqlite.docker.tar fixture-packages:rpm-sqlite
    "${PY[@]}" expected rpm "$WORK" "$HERE"/rpm-sqlite.expected.json --where /var/lib/rpm \
        --tool "$(rpm --version), database backend $(rpm --eval '%_db_backend')" \
        --notes "Per layer: rpm --root SNAPSHOT --dbpath /var/lib/rpm -qa --qf '%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\n' and rpm --root SNAPSHOT --dbpath /var/lib/rpm -ql NAME. The database is /var/lib/rpm/rpmdb.sqlite (Debian's rpm 4.18 writes only sqlite: ndb and bdb are not built in, bdb_ro only reads). 'final' (last layer only) is computed by make_fixtures.py from the last snapshot, not by rpm."
}

# ----------------------------------------------------------------------------------- apk
#
# Debian 12 has no apk-tools package, so both tools are built from their sources:
#   APK_TOOLS_SRC  apk-tools v2.14.10 (git tag v2.14.10 of alpine/apk-tools; Alpine 3.19-3.22 ship 2.14)
#   ABUILD_SRC     abuild 3.17.0 (git tag 3.17.0 of alpine/abuild): only abuild-tar.c is used
# Without them, the apk fixture is skipped and the one in this folder is kept.
APK_TOOLS_SRC=${APK_TOOLS_SRC:-/work/pkgfix/apk-src}
ABUILD_SRC=${ABUILD_SRC:-/work/pkgfix/abuild-src}
APK=$W/tools/apk

build_apk_tools() {
    apt_install build-essential pkg-config libssl-dev zlib1g-dev
    make -C "$APK_TOOLS_SRC" LUA=no -j2 >/dev/null
    gcc -O2 -o "$W"/tools/abuild-tar "$ABUILD_SRC"/abuild-tar.c -lcrypto
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$APK_TOOLS_SRC/src" "$APK_TOOLS_SRC/src/apk" > "$APK"
    chmod 755 "$APK"
}

# build_apk NAME PKGVER DIR: an unsigned .apk the way abuild's create_apks() makes one:
# data.tar.gz (pax tar, sha1 of every file in APK-TOOLS.checksum.SHA1 by abuild-tar --hash),
# .PKGINFO with its datahash, control.tar.gz (abuild-tar --cut), the two concatenated.
build_apk() {
    local name=$1 ver=$2 dir=$3 ctl=$WORK/apkbuild/$1-$2
    local tar=(tar --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,atime:=0,ctime:=0
               --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --no-recursion --null -f - -c)
    mkdir -p "$ctl" "$WORK"/apks
    find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    (cd "$dir" && find ./* -print0 | sed -z 's|^\./||' | sort -z | "${tar[@]}" -T -) \
        | { abuild-tar --hash || true; } | gzip -n -9 > "$ctl"/data.tar.gz  # --hash exits 1 at EOF
    cat > "$ctl"/.PKGINFO <<PKGINFO
# Generated by make_fixtures.sh following abuild 3.17.0
pkgname = $name
pkgver = $ver
pkgdesc = $name, a tiny package for Layer Explorer's tests
url = https://example.invalid/$name
builddate = $SOURCE_DATE_EPOCH
packager = Layer Explorer fixtures <fixtures@example.invalid>
size = $(find "$dir" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
arch = noarch
origin = $name
license = MIT
datahash = $(sha256sum "$ctl"/data.tar.gz | cut -d' ' -f1)
PKGINFO
    touch -d "@$SOURCE_DATE_EPOCH" "$ctl"/.PKGINFO
    (cd "$ctl" && printf '.PKGINFO\0' | "${tar[@]}" -T - | abuild-tar --cut | gzip -n -9 > control.tar.gz)
    cat "$ctl"/control.tar.gz "$ctl"/data.tar.gz > "$WORK"/apks/$name-$ver.apk
}

make_apk() {
    if [ ! -f "$APK_TOOLS_SRC"/src/apk.c ] || [ ! -f "$ABUILD_SRC"/abuild-tar.c ]; then
        echo "apk: no apk-tools/abuild sources (APK_TOOLS_SRC, ABUILD_SRC); keeping apk.docker.tar" >&2
        return
    fi
    mkdir -p "$W"/tools
    build_apk_tools
    export PATH="$W/tools:$PATH"   # apk and abuild-tar
    start apk
    local s=$WORK/src
    put "$s"/tool-1/usr/bin/fixture-tool 755 '#!/bin/sh
echo "fixture-tool 1.0"'
    put "$s"/tool-1/etc/fixture-tool.conf 644 'level=1'
    put "$s"/tool-1/usr/share/doc/fixture-tool/OLD-NOTES 644 'dropped in 2.0'
    build_apk fixture-tool 1.0-r0 "$s"/tool-1
    put "$s"/tool-2/usr/bin/fixture-tool 755 '#!/bin/sh
echo "fixture-tool 2.0, a longer script than 1.0 had"'
    put "$s"/tool-2/usr/bin/fixture-tool-new 755 '#!/bin/sh
echo "new in 2.0"'
    put "$s"/tool-2/etc/fixture-tool.conf 644 'level=2'
    build_apk fixture-tool 2.0-r0 "$s"/tool-2
    put "$s"/extra-1/usr/sbin/fixture-extrad 755 '#!/bin/sh
echo "fixture-extrad 1.0"'
    mkdir -p "$s"/extra-1/usr/share/fixture-extra "$s"/extra-1/var/lib/fixture-extra
    head -c 20000 /dev/zero | tr '\0' e > "$s"/extra-1/usr/share/fixture-extra/data.txt
    ln -s data.txt "$s"/extra-1/usr/share/fixture-extra/current.txt
    build_apk fixture-extra 1.0-r0 "$s"/extra-1

    cd "$WORK"/apks
    # apk --initdb also makes device nodes in $R/dev; a container build never stores /dev
    step 'mkdir -p "$R"/bin "$R"/sbin "$R"/usr/bin "$R"/usr/sbin; apk --root "$R" --arch x86_64 --initdb add; rm -f "$R"/dev/*'
    step 'apk --root "$R" --allow-untrusted --no-network add fixture-tool-1.0-r0.apk fixture-extra-1.0-r0.apk'
    step 'apk --root "$R" --allow-untrusted --no-network add fixture-tool-2.0-r0.apk'
    step 'apk --root "$R" --no-network del fixture-extra'
    cd "$HERE"

    "${PY[@]}" pack "$WORK" "$HERE"/apk.docker.tar fixture-packages:apk
    "${PY[@]}" expected apk "$WORK" "$HERE"/apk.expected.json \
        --tool "$(apk --version | head -1) (built from source), packages made with abuild-tar from abuild 3.17.0" \
        --notes "Per layer: apk --root SNAPSHOT info (names), apk info -v (name-version), apk list -I (arch) and apk info -L NAME (paths, relative to / in apk's output, written here with a leading /). The database is /lib/apk/db/installed, written by apk itself. 'final' (last layer only) is computed by make_fixtures.py from the last snapshot, not by apk."
}

# ----------------------------------------------------------------------------------- pip
#
# The image layout of the official python images: /usr/local/lib/python3.11/site-packages.
# PYTHON must be an upstream CPython 3.11 (pyenv's here): Debian's python3.11 maps
# --prefix /usr/local to .../local/lib/python3.11/dist-packages.
PYTHON=${PYTHON:-python3.11}
PIP_VERSION=24.2
OLD_PIP_VERSION=23.0.1   # the last pip that runs 'setup.py install' (--no-binary), 23.1 dropped it

# pip ARGS: pip $PIP_VERSION run from its wheel as if inside the image: -S keeps the host's
# site-packages out, PYTHONPATH puts the image's in, so pip sees (and upgrades or uninstalls)
# what is installed in $R, while --root "$R" --prefix /usr/local says where new files go.
pip() {
    PYTHONPATH="$R/usr/local/lib/python3.11/site-packages" \
        "$PYTHON" -S "$W"/tools/pip-$PIP_VERSION-py3-none-any.whl/pip --disable-pip-version-check "$@"
}

# pip_legacy ARGS: pip $OLD_PIP_VERSION in a throwaway venv with setuptools and no wheel, so
# --no-binary :all: --no-use-pep517 runs 'setup.py install --record' and an .egg-info results
pip_legacy() {
    "$W"/tools/legacy-venv/bin/python -m pip --disable-pip-version-check "$@"
}

make_pip() {
    mkdir -p "$W"/tools
    export PIP_CACHE_DIR=$W/pip-cache
    [ "$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_preferred_scheme("prefix"))')" = posix_prefix ] \
        || { echo "pip: $PYTHON is not an upstream CPython (set PYTHON)" >&2; exit 1; }
    rm -f "$W"/tools/pip-*.whl
    "$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary :all: \
        -d "$W"/tools pip==$PIP_VERSION
    rm -rf "$W"/tools/legacy-venv
    "$PYTHON" -m venv "$W"/tools/legacy-venv
    "$W"/tools/legacy-venv/bin/python -m pip install -q --disable-pip-version-check \
        pip==$OLD_PIP_VERSION setuptools==65.5.0
    "$W"/tools/legacy-venv/bin/python -m pip uninstall -q -y wheel 2>/dev/null || true

    start pip
    local opts='--no-deps --root-user-action=ignore --root "$R" --prefix /usr/local'
    step 'usrmerge_base; mkdir -p "$R"/usr/local/bin "$R"/usr/local/lib/python3.11/site-packages'
    step "pip install $opts six==1.16.0 python-dotenv==1.0.1 toml==0.10.2"
    step "pip_legacy install $opts --no-binary :all: --no-use-pep517 termcolor==1.1.0"
    step "pip install $opts six==1.17.0"
    step 'pip uninstall --root-user-action=ignore -y toml'

    "${PY[@]}" pack "$WORK" "$HERE"/pip.docker.tar fixture-packages:pip
    PIP="$PYTHON -S $W/tools/pip-$PIP_VERSION-py3-none-any.whl/pip" \
    "${PY[@]}" expected pip "$WORK" "$HERE"/pip.expected.json --where /usr/local/lib/python3.11/site-packages \
        --tool "pip $PIP_VERSION (pip list --path), $("$PYTHON" --version); egg-info by pip $OLD_PIP_VERSION + setuptools 65.5.0" \
        --notes "Per layer: pip list --path SNAPSHOT/usr/local/lib/python3.11/site-packages --format json. files: the paths in the distribution's RECORD (dist-info) or installed-files.txt (egg-info, relative to the egg-info folder), joined to the site-packages folder and normalised; listing: which file listed them. 'pip' in created_by is pip $PIP_VERSION run as PYTHONPATH=<image site-packages> $PYTHON -S pip.whl/pip, so that it sees what the image has; 'pip_legacy' is pip $OLD_PIP_VERSION in a venv without wheel. Scripts' shebangs name the host's python. 'final' (last layer only) is computed by make_fixtures.py from the last snapshot, not by pip."
}

# ----------------------------------------------------------------------------------- npm

make_npm() {
    command -v npm >/dev/null || apt_install nodejs npm   # made with node 20 / npm 11 (not Debian's)
    start npm
    export npm_config_cache=$W/npm-cache npm_config_audit=false npm_config_fund=false \
        npm_config_update_notifier=false
    step 'usrmerge_base; mkdir -p "$R"/app; printf "{\n  \"name\": \"fixture-app\",\n  \"version\": \"1.0.0\",\n  \"private\": true\n}\n" > "$R"/app/package.json'
    # debug 4.3.4 pins ms 2.1.2, so with ms 2.0.0 at the top it gets a nested node_modules/ms
    step 'npm install --prefix "$R"/app --save-exact is-number@7.0.0 ms@2.0.0 debug@4.3.4'
    step 'npm install --prefix "$R"/app --save-exact ms@2.1.3'
    step 'npm uninstall --prefix "$R"/app is-number'

    "${PY[@]}" pack "$WORK" "$HERE"/npm.docker.tar fixture-packages:npm
    "${PY[@]}" expected npm "$WORK" "$HERE"/npm.expected.json --where /app \
        --tool "npm $(npm --version) (node $(node --version))" \
        --notes "Per layer: npm_ls is npm ls --prefix SNAPSHOT/app --all --json as printed; packages flattens it (depth first), with where = the package's folder (npm ls --long's path) and files = every file under that folder except nested node_modules (npm keeps no file list; this is what a reader has to walk too). Installed with npm_config_audit=false, npm_config_fund=false and a scratch cache. 'final' (last layer only) is computed by make_fixtures.py from the last snapshot, not by npm."
}

# --------------------------------------------------------------------------------- main

for what in ${*:-dpkg rpm apk pip npm}; do
    "make_$what"
done
