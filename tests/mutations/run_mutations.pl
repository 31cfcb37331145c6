#!/usr/bin/perl
# The mutation check: every broken version of the algorithm listed in mutations.txt must make
# its named test fail. For each one, in a scratch copy of the repository: apply the broken
# version's substitutions to one header (each must match exactly once, so a mutation that no
# longer applies is reported instead of silently passing), rebuild the one test executable
# that should catch it, run the one test case, and expect it to fail. Before that, every named
# test must pass on the unbroken code, or a failure would prove nothing.
#
#   perl tests/mutations/run_mutations.pl [SUBSTRING]
#
# SUBSTRING runs only the mutations whose name contains it. Environment: TSNN_JOBS (build jobs,
# default 2), MUTATION_WORK_DIR (scratch directory, default a fresh one under TMPDIR). Exits 0
# when every mutation was caught, 1 when one was not (or did not apply or build), 2 on a usage
# or set-up error. The repository itself is never modified. Uses only perl-base.
use strict;
use warnings;

my $only = shift(@ARGV) // '';
die "usage: $0 [SUBSTRING]\n" if @ARGV;
(my $here = $0) =~ s{/[^/]*$}{};
$here = '.' if $here eq $0;
my $root = `cd '$here/../..' && pwd`;
chomp $root;
my $jobs = $ENV{TSNN_JOBS} // 2;
my $work = $ENV{MUTATION_WORK_DIR} // `mktemp -d "\${TMPDIR:-/tmp}/tsnn-mutations.XXXXXX"`;
chomp $work;

sub run { my ($cmd) = @_; return system('sh', '-c', $cmd) == 0; }
sub quote { my ($s) = @_; $s =~ s/'/'\\''/g; return "'$s'"; }
sub slurp {
  my ($p) = @_;
  open(my $f, '<', $p) or die "$0: cannot read $p: $!\n";
  local $/;
  my $t = <$f>;
  return $t;
}
sub spit {
  my ($p, $t) = @_;
  open(my $f, '>', $p) or die "$0: cannot write $p: $!\n";
  print $f $t;
  close($f) or die "$0: cannot write $p: $!\n";
}

# Blocks of "key value" lines.
my @mutations;
my $cur;
for my $line (split /\n/, slurp("$here/mutations.txt")) {
  next if $line =~ /^#/;
  if ($line =~ /^\s*$/) { $cur = undef; next; }
  my ($key, $value) = $line =~ /^(\w+)\s+(.*)$/ or die "$0: bad line in mutations.txt: $line\n";
  if (!$cur) { $cur = { replace => [] }; push @mutations, $cur; }
  if ($key eq 'replace') { push @{ $cur->{replace} }, $value; }
  else { $cur->{$key} = $value; }
}
@mutations = grep { index($_->{name}, $only) >= 0 } @mutations;
die "$0: no mutation matches '$only'\n" unless @mutations;
for my $m (@mutations) {
  for my $k (qw(name file test)) { die "$0: a mutation lacks '$k'\n" unless defined $m->{$k}; }
  ($m->{target}, $m->{case}) = $m->{test} =~ /^(\S+)\s+(.+)$/
    or die "$0: '$m->{name}': test needs an executable and a test case\n";
}

# Catch2 reads ',' as "or" and '[' as a tag in a test spec; escape them in names.
sub spec { my ($c) = @_; return $c if $c =~ /^\[/; $c =~ s/([,\[\]\\])/\\$1/g; return $c; }

my $src = "$work/src";
my $build = "$work/build";
print "mutation check in $work\n";
run("mkdir -p " . quote($src) . " && cd " . quote($root) .
    " && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C " . quote($src))
  or do { print STDERR "$0: cannot copy the repository\n"; exit 2; };
run("cmake -S " . quote($src) . " -B " . quote($build) . " -DCMAKE_BUILD_TYPE=Release" .
    " -DTSNN_BUILD_EXAMPLES=OFF -DTSNN_BUILD_BENCHMARKS=OFF -DTSNN_TEST_NATIVE=OFF" .
    " > " . quote("$work/configure.log") . " 2>&1")
  or do { print STDERR "$0: configuring failed, see $work/configure.log\n"; exit 2; };

sub build {
  my ($target, $log) = @_;
  return run("cmake --build " . quote($build) . " -j$jobs --target $target > " . quote($log) . " 2>&1");
}
sub test_passes {
  my ($m, $log) = @_;
  return run(quote("$build/tests/$m->{target}") . " " . quote(spec($m->{case})) .
             " --warn NoTests > " . quote($log) . " 2>&1");
}

# The named tests pass on the code as it is.
my %seen;
for my $m (@mutations) {
  next if $seen{"$m->{target}\0$m->{case}"}++;
  build($m->{target}, "$work/baseline-build.log")
    or do { print STDERR "$0: $m->{target} does not build, see $work/baseline-build.log\n"; exit 2; };
  test_passes($m, "$work/baseline-test.log")
    or do { print STDERR "$0: '$m->{case}' fails without a mutation, see $work/baseline-test.log\n"; exit 2; };
}

my ($caught, $failed) = (0, 0);
my $i = 0;
for my $m (@mutations) {
  ++$i;
  my $path = "$src/include/tsnn/$m->{file}";
  my $pristine = slurp($path);
  my $text = $pristine;
  my $problem = '';
  for my $r (@{ $m->{replace} }) {
    my $n = eval "\$text =~ ${r}gs";
    die "$0: '$m->{name}': bad substitution $r: $@\n" if $@;
    if (($n || 0) != 1) { $problem = "does not apply (" . ($n || 0) . " matches of $r)"; last; }
  }
  my $log = "$work/mutation-$i.log";
  if (!$problem) {
    spit($path, $text);
    if (!build($m->{target}, $log)) { $problem = "does not build, see $log"; }
    elsif (test_passes($m, $log)) { $problem = "NOT CAUGHT: '$m->{case}' passed, see $log"; }
    spit($path, $pristine);
  }
  if ($problem) {
    ++$failed;
    printf "%-70s %s\n", $m->{name}, $problem;
  } else {
    ++$caught;
    printf "%-70s caught by %s: %s\n", $m->{name}, $m->{target}, $m->{case};
  }
}
build($_, "$work/restore.log") for keys %{ { map { $_->{target} => 1 } @mutations } };
printf "%d of %d mutations caught\n", $caught, $caught + $failed;
exit($failed ? 1 : 0);
