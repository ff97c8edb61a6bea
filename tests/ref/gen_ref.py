#!/usr/bin/python3
"""gen_ref.py: PyTorch reference data for the network engine's tests.

Run by hand from the repository root with Debian's PyTorch:

    /usr/bin/python3 tests/ref/gen_ref.py

It rewrites tests/ref/{basic,bottleneck,pool}.safetensors and
tests/ref/resnet{18,34,50}_keys.txt (see tests/ref/README for what each
holds) and prints how far PyTorch's own float32 results are from the
float64 ones stored. The output is deterministic (fixed seeds, one thread,
float64 arithmetic); `make check` needs only the committed files, not torch.

The small ResNets are built here with torchvision's module structure and
names (ResNet v1.5: the stride of a downsampling Bottleneck is on its 3x3
conv) but with tiny widths; the script checks that at full width the
builder gives exactly torchvision's resnet18/34/50 state_dict and outputs.
Files are written with numpy alone, as man/rl-ckpt.5 shows.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))

# safetensors with numpy (the layout of man/rl-ckpt.5), shared with bench/
from safetensors_np import load_safetensors, save_safetensors  # noqa: E402

# ---------------------------------------------------------------------------
# ResNet v1.5 with torchvision's names and a width per stage

def shortcut(cin, cout, stride):
    """The projection (1x1 conv of the block's stride, then BN) where the
    identity does not fit; registered last in a block, as torchvision."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                         nn.BatchNorm2d(cout))


class Block(nn.Module):
    def join(self, x, y):
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(y + skip)


class BasicBlock(Block):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = shortcut(cin, cout, stride)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.join(x, y)


class Bottleneck(Block):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = shortcut(cin, cout, stride)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.join(x, y)


STAGES = ['stem', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4']


class ResNet(nn.Module):
    """torchvision's ResNet with widths[i] planes in stage i (64..512 there)."""

    def __init__(self, block, layers, widths=(64, 128, 256, 512),
                 num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        for i, (planes, n) in enumerate(zip(widths, layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if i > 0 and j == 0 else 1))
                cin = planes * block.expansion
            setattr(self, 'layer%d' % (i + 1), nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def stages(self, x):
        """Every stage's output: stem (after ReLU, before maxpool), ..."""
        out = {}
        x = out['stem'] = self.relu(self.bn1(self.conv1(x)))
        x = out['maxpool'] = self.maxpool(x)
        for i in range(1, 5):
            x = out['layer%d' % i] = getattr(self, 'layer%d' % i)(x)
        return out

    def forward(self, x):
        x = self.avgpool(self.stages(x)['layer4'])
        return self.fc(torch.flatten(x, 1))


TORCHVISION = {
    'resnet18': (BasicBlock, [2, 2, 2, 2]),
    'resnet34': (BasicBlock, [3, 4, 6, 3]),
    'resnet50': (Bottleneck, [3, 4, 6, 3]),
}

DTYPE_NAMES = {torch.float32: 'F32', torch.float64: 'F64',
               torch.int64: 'I64', torch.int32: 'I32', torch.uint8: 'U8'}


def keys_lines(sd):
    """'name dtype d0 d1 ...' per state_dict entry, in order."""
    return ['%s %s%s' % (k, DTYPE_NAMES[v.dtype],
                         ''.join(' %d' % d for d in v.shape))
            for k, v in sd.items()]


def check_builder():
    """At full width our builder is torchvision's resnet18/34/50."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    for arch, (block, layers) in TORCHVISION.items():
        ref = getattr(torchvision.models, arch)()
        ours = ResNet(block, layers)
        assert keys_lines(ours.state_dict()) == keys_lines(ref.state_dict()), \
            arch + ': names, dtypes or shapes differ from torchvision'
        ours.load_state_dict(ref.state_dict(), strict=True)
        for train in (True, False):
            ref.train(train)
            ours.train(train)
            with torch.no_grad():
                d = (ref(x) - ours(x)).abs().max().item()
            assert d < 1e-5, '%s: outputs differ by %g' % (arch, d)
        with open(os.path.join(HERE, arch + '_keys.txt'), 'w') as f:
            f.write('\n'.join(keys_lines(ref.state_dict())) + '\n')
        print('%s: builder matches torchvision (%d state_dict entries)'
              % (arch, len(ref.state_dict())))


# ---------------------------------------------------------------------------
# the reference runs

def init(model, seed):
    """Conv: Kaiming normal (fan_out, as torchvision); BN affine and running
    statistics random, so a swapped or ignored tensor shows."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            std = (2.0 / (m.out_channels * m.kernel_size[0]
                          * m.kernel_size[1])) ** 0.5
            m.weight.data = torch.randn(m.weight.shape, generator=g) * std
        elif isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) + 0.5
            m.bias.data = torch.randn(c, generator=g) * 0.2
            m.running_mean = torch.randn(c, generator=g) * 0.2
            m.running_var = torch.rand(c, generator=g) + 0.5
            m.num_batches_tracked.fill_(5)
    return g


def state(model):
    """The backbone's state_dict without the unused classifier."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if not k.startswith('fc.')}


def to_np(t):
    t = t.detach()
    return (t.float() if t.is_floating_point() else t).numpy().copy()


def run(model, sd, x, labels, hw, hb):
    """One train-mode forward/backward and one eval-mode forward of a model
    of whatever dtype, from state sd. Returns name -> tensor."""
    dt = hw.dtype
    model.load_state_dict({**sd, 'fc.weight': model.fc.weight,
                           'fc.bias': model.fc.bias})
    model.zero_grad()
    x = x.to(dt).requires_grad_()
    hw = hw.clone().requires_grad_()
    hb = hb.clone().requires_grad_()
    out = {}
    model.train()
    st = model.stages(x)
    gap = st['layer4'].mean((2, 3))
    logits = F.linear(gap, hw, hb)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    for s in STAGES:
        out['train.' + s] = st[s]
    out['train.gap'] = gap
    out['train.logits'] = logits
    out['train.loss'] = loss
    out['grad.input'] = x.grad
    for k, p in model.named_parameters():
        if not k.startswith('fc.'):
            out['grad.' + k] = p.grad
    out['grad.head.fc.weight'] = hw.grad
    out['grad.head.fc.bias'] = hb.grad
    for k, v in model.state_dict().items():
        if k.split('.')[-1] in ('running_mean', 'running_var',
                                'num_batches_tracked'):
            out['updated.' + k] = v.clone()
    model.eval()
    with torch.no_grad():
        st = model.stages(x)
        gap = st['layer4'].mean((2, 3))
        for s in STAGES:
            out['eval.' + s] = st[s]
        out['eval.gap'] = gap
        out['eval.logits'] = F.linear(gap, hw, hb)
    return out


# Feature1-5 of relloc-protocols(7), FEATURES: (stage, AvgPool2d k, s, p)
POOL = [('stem', 10, 10, 4), ('layer1', 16, 8, 0), ('layer2', 13, 5, 0),
        ('layer3', 8, 3, 0), ('layer4', 6, 1, 0)]
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def pooled(model, img):
    """Eval-mode Feature1-5 of the uint8 image batch img (N, 3, 224, 224)
    normalised as ToTensor + Normalize do it, in float32."""
    x = img.float().div(255)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) \
        / torch.tensor(STD).view(1, 3, 1, 1)
    dt = model.conv1.weight.dtype
    model.eval()
    with torch.no_grad():
        st = model.stages(x.to(dt))
    out = {}
    for i, (stage, k, s, p) in enumerate(POOL):
        f = F.avg_pool2d(st[stage], k, s, p, ceil_mode=False,
                         count_include_pad=True)
        out['pool.feat%d' % (i + 1)] = f.reshape(len(img), -1)
    return out


def reference(name, block, layers, width, shape, classes, seed, pool):
    """Write tests/ref/<name>.safetensors; return the float32-vs-float64
    deviations of PyTorch itself."""
    widths = (width, 2 * width, 4 * width, 8 * width)
    model = ResNet(block, layers, widths)
    g = init(model, seed)
    sd = state(model)
    x = torch.randn(shape, generator=g)
    labels = torch.randint(0, classes, (shape[0],), generator=g)
    cin = widths[3] * block.expansion
    hw = torch.randn(classes, cin, generator=g) * 0.5
    hb = torch.randn(classes, generator=g) * 0.1
    img = torch.randint(0, 256, (1, 3, 224, 224), generator=g,
                        dtype=torch.uint8)

    # the reference in float64, then PyTorch's float32 for comparison;
    # the pooled features come from the eval state after the train step
    ref = run(model.double(), {k: v.double() if v.is_floating_point() else v
                               for k, v in sd.items()},
              x.double(), labels, hw.double(), hb.double())
    if pool:
        ref.update(pooled(model, img))
    f32 = run(model.float(), sd, x, labels, hw, hb)
    if pool:
        f32.update(pooled(model, img))

    tensors = {'input': x, 'labels': labels}
    tensors.update(sd)
    tensors['head.fc.weight'] = hw
    tensors['head.fc.bias'] = hb
    if pool:
        tensors['pool.input_u8'] = img
    tensors.update(ref)
    meta = {
        'block': block.__name__, 'layers': ','.join(map(str, layers)),
        'width': str(width), 'classes': str(classes),
        'bn_momentum': '0.1', 'bn_eps': '1e-05',
        'generator': 'tests/ref/gen_ref.py', 'torch': torch.__version__,
    }
    if pool:
        meta['pool_normalize'] = json.dumps({'mean': MEAN, 'std': STD})
        meta['pool_specs'] = json.dumps([list(q) for q in POOL])
    save_safetensors(os.path.join(HERE, name + '.safetensors'),
                     {k: to_np(v) for k, v in tensors.items()}, meta)
    dev = {}
    for k, v in ref.items():
        if v.is_floating_point():
            scale = v.abs().max().item() or 1.0
            dev[k] = (f32[k].double() - v).abs().max().item() / scale
    return dev


def verify(name, block, layers, width):
    """Read the file back as a user would (the numpy loader) and check the
    exact names, shapes and dtypes, and one train-mode forward from it."""
    t, meta = load_safetensors(os.path.join(HERE, name + '.safetensors'))
    model = ResNet(block, layers, [width << i for i in range(4)])
    sd = model.state_dict()
    for k, v in sd.items():
        if not k.startswith('fc.'):
            assert tuple(t[k].shape) == tuple(v.shape), k
            assert DTYPE_NAMES[v.dtype] == {'float32': 'F32', 'int64': 'I64'}[
                str(t[k].dtype)], k
    assert t['train.loss'].shape == () and meta['width'] == str(width)
    model.load_state_dict({k: torch.from_numpy(t[k].copy()) if k in t else v
                           for k, v in sd.items()}, strict=True)
    model.double().train()
    with torch.no_grad():
        y = model.stages(torch.from_numpy(t['input'].copy()).double())
    for s in STAGES:
        ref = torch.from_numpy(t['train.' + s].copy()).double()
        d = (y[s] - ref).abs().max().item() / ref.abs().max().item()
        assert d < 1e-6, '%s: train.%s read back differs by %g' % (name, s, d)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    check_builder()
    devs = {}
    devs['basic'] = reference('basic', BasicBlock, [2, 1, 1, 1], 2,
                              (4, 3, 24, 32), 5, 1, False)
    devs['bottleneck'] = reference('bottleneck', Bottleneck, [2, 1, 1, 1], 2,
                                   (2, 3, 40, 40), 5, 2, True)

    verify('basic', BasicBlock, [2, 1, 1, 1], 2)
    verify('bottleneck', Bottleneck, [2, 1, 1, 1], 2)

    # PyTorch float32 against the stored float64, max |diff| / max |ref|,
    # by group: what an engine in float32 should expect to see
    for net, dev in devs.items():
        groups = {}
        for k, d in dev.items():
            grp = k.split('.')[0]
            if grp == 'pool':
                grp = 'pool.feat'
            elif grp == 'grad':
                grp = 'grad.input' if k == 'grad.input' else 'grad.params'
            groups[grp] = max(groups.get(grp, 0.0), d)
        worst = max(dev, key=dev.get)
        print('%s: float32 vs float64: %s; worst %s %.2g' % (
            net, ', '.join('%s %.2g' % kv for kv in sorted(groups.items())),
            worst, dev[worst]))

    total = 0
    for f in sorted(os.listdir(HERE)):
        if f.endswith(('.safetensors', '_keys.txt')):
            total += os.path.getsize(os.path.join(HERE, f))
            if f.endswith('.safetensors'):
                t, _ = load_safetensors(os.path.join(HERE, f))
                print('%s: %d tensors, %d bytes' % (
                    f, len(t), os.path.getsize(os.path.join(HERE, f))))
    print('total %d bytes' % total)


if __name__ == '__main__':
    sys.exit(main())
